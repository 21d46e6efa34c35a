//! The texts that ship: an SMS and, where Plivo can speak the language, a
//! call's text, per locale; and the language each country's numbers get.
//!
//! An SMS must stay one segment with a 10-digit code, a brand of up to 10
//! characters and the WebOTP line for a domain of up to 15 (a unit test
//! checks every one): texts outside the GSM-7 alphabet have 70 characters,
//! so those say the code and the brand, and little else. The English texts
//! are `OTP_MESSAGE_TEMPLATE` and `VOICE_MESSAGE_TEMPLATE`.

/// A built-in locale: its id (BCP 47), its SMS text, and its call as
/// Plivo's `<Speak language>` and text, when Plivo has the language.
pub struct Builtin {
    pub id: &'static str,
    pub sms: &'static str,
    pub voice: Option<(&'static str, &'static str)>,
}

const fn with_voice(
    id: &'static str,
    sms: &'static str,
    language: &'static str,
    voice: &'static str,
) -> Builtin {
    Builtin {
        id,
        sms,
        voice: Some((language, voice)),
    }
}

/// Plivo has no voice for these: calls speak English.
const fn sms_only(id: &'static str, sms: &'static str) -> Builtin {
    Builtin {
        id,
        sms,
        voice: None,
    }
}

/// Mandarin is spoken the same whichever script the reader uses.
const ZH_VOICE: &str = "您的{brand}验证码是{code}。再说一遍，您的验证码是{code}。";

pub const BUILTIN: &[Builtin] = &[
    with_voice(
        "es",
        "Tu código de {brand} es {code}.",
        "es-ES",
        "Tu código de verificación de {brand} es {code}. Repito, tu código es {code}.",
    ),
    with_voice(
        "pt-BR",
        "Seu código {brand} é {code}.",
        "pt-BR",
        "Seu código de verificação {brand} é {code}. Repetindo, seu código é {code}.",
    ),
    with_voice(
        "pt-PT",
        "O seu código {brand} é {code}.",
        "pt-PT",
        "O seu código de verificação {brand} é {code}. Repito, o seu código é {code}.",
    ),
    with_voice(
        "fr",
        "Votre code de vérification {brand} est {code}. Il expire dans {minutes} minutes.",
        "fr-FR",
        "Votre code de vérification {brand} est {code}. Je répète, votre code est {code}.",
    ),
    with_voice(
        "de",
        "Ihr Bestätigungscode für {brand} lautet {code}. Er ist {minutes} Minuten gültig.",
        "de-DE",
        "Ihr Bestätigungscode für {brand} lautet {code}. Ich wiederhole, Ihr Code lautet {code}.",
    ),
    with_voice(
        "it",
        "Il tuo codice di verifica per {brand} è {code}. Scade tra {minutes} minuti.",
        "it-IT",
        "Il tuo codice di verifica per {brand} è {code}. Ripeto, il tuo codice è {code}.",
    ),
    with_voice(
        "nl",
        "Je verificatiecode voor {brand} is {code}. De code verloopt over {minutes} minuten.",
        "nl-NL",
        "Je verificatiecode voor {brand} is {code}. Ik herhaal, je code is {code}.",
    ),
    with_voice(
        "sv",
        "Din verifieringskod för {brand} är {code}. Koden gäller i {minutes} minuter.",
        "sv-SE",
        "Din verifieringskod för {brand} är {code}. Jag upprepar, din kod är {code}.",
    ),
    with_voice(
        "da",
        "Din bekræftelseskode til {brand} er {code}. Koden udløber om {minutes} minutter.",
        "da-DK",
        "Din bekræftelseskode til {brand} er {code}. Jeg gentager, din kode er {code}.",
    ),
    with_voice(
        "nb",
        "Din bekreftelseskode for {brand} er {code}. Koden utløper om {minutes} minutter.",
        "nb-NO",
        "Din bekreftelseskode for {brand} er {code}. Jeg gjentar, koden din er {code}.",
    ),
    sms_only(
        "fi",
        "{brand}: vahvistuskoodisi on {code}. Koodi vanhenee {minutes} minuutin kuluttua.",
    ),
    with_voice(
        "pl",
        "Kod weryfikacyjny {brand}: {code}",
        "pl-PL",
        "Twój kod weryfikacyjny {brand} to {code}. Powtarzam, Twój kod to {code}.",
    ),
    sms_only("cs", "Ověřovací kód {brand}: {code}"),
    with_voice(
        "ro",
        "Codul de verificare {brand} este {code}.",
        "ro-RO",
        "Codul tău de verificare {brand} este {code}. Repet, codul tău este {code}.",
    ),
    with_voice(
        "tr",
        "{brand} onay kodunuz: {code}",
        "tr-TR",
        "{brand} onay kodunuz {code}. Tekrar ediyorum, onay kodunuz {code}.",
    ),
    sms_only("el", "Ο κωδικός σας για {brand}: {code}"),
    with_voice(
        "ru",
        "Ваш код для {brand}: {code}",
        "ru-RU",
        "Ваш код для {brand}: {code}. Повторяю, ваш код: {code}.",
    ),
    sms_only("uk", "Ваш код для {brand}: {code}"),
    with_voice(
        "ar",
        "رمز التحقق من {brand}: {code}",
        "arb",
        "رمز التحقق من {brand} هو {code}. أكرر، رمز التحقق هو {code}.",
    ),
    sms_only("he", "קוד האימות ל-{brand}: {code}"),
    with_voice(
        "hi",
        "{brand} सत्यापन कोड: {code}",
        "hi-IN",
        "आपका {brand} सत्यापन कोड {code} है। एक बार फिर, आपका कोड {code} है।",
    ),
    sms_only(
        "id",
        "Kode verifikasi {brand} Anda adalah {code}. Berlaku selama {minutes} menit.",
    ),
    sms_only("vi", "Mã xác minh {brand}: {code}"),
    sms_only("th", "รหัสยืนยัน {brand} คือ {code}"),
    with_voice(
        "ja",
        "{brand}の認証コード：{code}（{minutes}分間有効）",
        "ja-JP",
        "{brand}の認証コードは、{code}です。もう一度繰り返します。認証コードは、{code}です。",
    ),
    with_voice(
        "ko",
        "[{brand}] 인증번호는 {code}입니다.",
        "ko-KR",
        "{brand} 인증번호는 {code}입니다. 다시 한 번 알려 드립니다. 인증번호는 {code}입니다.",
    ),
    with_voice(
        "zh-Hans",
        "您的{brand}验证码是{code}，{minutes}分钟内有效。",
        "cmn-CN",
        ZH_VOICE,
    ),
    with_voice(
        "zh-Hant",
        "您的{brand}驗證碼是{code}，{minutes}分鐘內有效。",
        "cmn-CN",
        ZH_VOICE,
    ),
];

/// The language of each country's numbers (ISO 3166 alpha-2), where one
/// language is the clear default; other countries get English. The tag is
/// then resolved as `{language}-{country}`, so `pt` for AO finds `pt-PT`,
/// and an `OTP_MESSAGE_TEMPLATES` entry for `es-MX` wins for +52 numbers.
pub const COUNTRY_LANGUAGES: &[(&str, &[&str])] = &[
    (
        "es",
        &[
            "ES", "MX", "AR", "CO", "CL", "PE", "VE", "EC", "GT", "CU", "BO", "DO", "HN", "PY",
            "SV", "NI", "CR", "PA", "UY", "PR", "GQ",
        ],
    ),
    ("pt", &["BR", "PT", "AO", "MZ", "CV", "GW", "ST", "TL"]),
    (
        "fr",
        &[
            "FR", "MC", "LU", "SN", "CI", "ML", "BF", "NE", "TG", "BJ", "GA", "CG", "CD", "MG",
            "GN", "TD", "CF", "DJ", "KM", "RE", "GP", "MQ", "GF", "YT", "PF", "NC", "PM", "BL",
            "MF", "WF", "HT", "BI", "CM",
        ],
    ),
    ("de", &["DE", "AT", "CH", "LI"]),
    ("it", &["IT", "SM", "VA"]),
    ("nl", &["NL", "BE", "SR", "CW", "SX", "AW", "BQ"]),
    ("sv", &["SE", "AX"]),
    ("da", &["DK", "GL", "FO"]),
    ("nb", &["NO", "SJ"]),
    ("fi", &["FI"]),
    ("pl", &["PL"]),
    ("cs", &["CZ"]),
    ("ro", &["RO", "MD"]),
    ("tr", &["TR"]),
    ("el", &["GR", "CY"]),
    ("ru", &["RU", "BY", "KZ", "KG"]),
    ("uk", &["UA"]),
    (
        "ar",
        &[
            "SA", "AE", "EG", "MA", "DZ", "TN", "LY", "IQ", "JO", "KW", "LB", "OM", "QA", "BH",
            "YE", "SY", "SD", "PS", "MR",
        ],
    ),
    ("he", &["IL"]),
    ("id", &["ID"]),
    ("vi", &["VN"]),
    ("th", &["TH"]),
    ("ja", &["JP"]),
    ("ko", &["KR"]),
    ("zh-Hans", &["CN"]),
    ("zh-Hant", &["TW", "HK", "MO"]),
];

/// The language of `country`'s numbers, if it has a clear one.
pub fn country_language(country: &str) -> Option<&'static str> {
    COUNTRY_LANGUAGES
        .iter()
        .find(|(_, countries)| countries.contains(&country))
        .map(|(language, _)| *language)
}
