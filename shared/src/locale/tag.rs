//! Language tags as clients send them (BCP 47: `es`, `pt-BR`, `zh-Hant`,
//! and often `pt_BR` or `ZH-tw`), matched to the locales on offer by RFC
//! 4647 lookup: the whole tag, then with its last subtag dropped, and so
//! on, with the aliases that plain truncation would get wrong (`zh-TW` is
//! Traditional Chinese, `pt` is Brazilian, `no` is Bokmål).

/// Longer tags are not languages a person has asked for.
const MAX_TAG_LEN: usize = 35;

/// The tag in lowercase with `-` separators, if it looks like BCP 47: a
/// language of 2 or 3 letters, then subtags of 1 to 8 letters or digits.
pub fn normalize(tag: &str) -> Option<String> {
    let tag = tag.trim().replace('_', "-").to_ascii_lowercase();
    let mut subtags = tag.split('-');
    let language = subtags.next()?;
    let valid = tag.len() <= MAX_TAG_LEN
        && (2..=3).contains(&language.len())
        && language.bytes().all(|b| b.is_ascii_lowercase())
        && subtags
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()));
    valid.then_some(tag)
}

/// The locale ids to try for a normalized tag, most specific first.
pub fn candidates(tag: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = tag;
    loop {
        out.push(current.to_owned());
        if let Some(alias) = alias(current) {
            out.push(alias.to_owned());
        }
        match current.rsplit_once('-') {
            Some((shorter, _)) => current = shorter,
            None => return out,
        }
    }
}

/// Where plain truncation falls on the wrong locale, or on none.
fn alias(tag: &str) -> Option<&'static str> {
    match tag {
        "zh" | "zh-cn" | "zh-sg" | "zh-my" => Some("zh-hans"),
        "zh-tw" | "zh-hk" | "zh-mo" => Some("zh-hant"),
        "pt" => Some("pt-br"),
        "no" | "nn" => Some("nb"),
        "iw" => Some("he"),
        "in" => Some("id"),
        // Every Portuguese but Brazil's writes as Portugal does.
        _ if tag.starts_with("pt-") && tag != "pt-br" && !tag.starts_with("pt-br-") => {
            Some("pt-pt")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_normalized_to_lowercase_with_hyphens() {
        assert_eq!(normalize(" pt_BR ").as_deref(), Some("pt-br"));
        assert_eq!(normalize("zh-Hant-TW").as_deref(), Some("zh-hant-tw"));
        for bad in [
            "",
            "e",
            "espanol",
            "es-",
            "es--mx",
            "1s",
            "es mx",
            "es-ÉS",
            "es-abcdefghi",
        ] {
            assert_eq!(normalize(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn lookup_drops_subtags_from_the_right_and_knows_the_exceptions() {
        assert_eq!(candidates("es-419"), ["es-419", "es"]);
        assert_eq!(candidates("zh-tw"), ["zh-tw", "zh-hant", "zh", "zh-hans"]);
        assert_eq!(candidates("pt-ao"), ["pt-ao", "pt-pt", "pt", "pt-br"]);
        assert_eq!(candidates("pt-br"), ["pt-br", "pt", "pt-br"]);
        assert_eq!(candidates("nn-no"), ["nn-no", "nn", "nb"]);
    }
}
