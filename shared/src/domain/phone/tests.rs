//! `PhoneNumber::parse` against libphonenumber's own answers.

use super::*;

#[test]
fn a_number_is_accepted_exactly_when_libphonenumber_calls_it_valid() {
    // `parse` asks for the type instead of `is_valid`: the same answer,
    // checked over ranges of several countries, single- and
    // multi-region calling codes and non-geographic ones alike.
    let mut accepted = 0;
    for prefix in [
        "+1415555",
        "+1268464",
        "+44740012",
        "+4420794",
        "+4915",
        "+3361234",
        "+8008",
        "+8823",
        "+9715",
        "+23480",
    ] {
        for n in 0..400u32 {
            let number = format!("{prefix}{:04}", n * 25);
            let valid = Parsed::parse(&number, None).is_ok_and(|p| p.is_valid());
            assert_eq!(PhoneNumber::parse(&number).is_ok(), valid, "{number}");
            accepted += usize::from(valid);
        }
    }
    assert!(
        accepted > 1_000,
        "the ranges hold valid numbers too: {accepted}"
    );
}

/// libphonenumber's general parser alone, as `parse` used it before
/// reading E.164 digits directly: (E.164, type, country, national).
fn as_libphonenumber_reads(input: &str) -> Option<(String, NumberType, Option<String>, String)> {
    let parsed = Parsed::parse(input, None).ok()?;
    let kind = parsed.get_type();
    (kind != PhoneNumberType::Unknown).then(|| {
        (
            parsed.format_as(PhoneNumberFormat::E164).into_owned(),
            NumberType::of(kind),
            parsed
                .get_region_code()
                .map(|r| r.to_string())
                .filter(|c| c.len() == 2 && c != "ZZ"),
            parsed.get_national_significant_number(),
        )
    })
}

#[test]
fn a_number_is_read_as_libphonenumber_reads_it() {
    // Every region's example number of every type, the non-geographic
    // codes' examples, and neighbours of each (valid or not, in ranges
    // of other types): the direct reading of E.164 digits and the
    // general parser give the same number, type, country and national
    // number, or both refuse it.
    let util = &*PHONE_NUMBER_UTIL;
    let mut examples: Vec<Parsed> = util
        .get_supported_regions()
        .flat_map(|region| {
            NumberType::ALL.into_iter().filter_map(move |kind| {
                let kind = match kind {
                    NumberType::FixedLine => PhoneNumberType::FixedLine,
                    NumberType::Mobile => PhoneNumberType::Mobile,
                    NumberType::TollFree => PhoneNumberType::TollFree,
                    NumberType::PremiumRate => PhoneNumberType::PremiumRate,
                    NumberType::SharedCost => PhoneNumberType::SharedCost,
                    NumberType::Voip => PhoneNumberType::VoIP,
                    NumberType::PersonalNumber => PhoneNumberType::PersonalNumber,
                    NumberType::Pager => PhoneNumberType::Pager,
                    NumberType::Uan => PhoneNumberType::UAN,
                    NumberType::Voicemail => PhoneNumberType::VoiceMail,
                    _ => return None,
                };
                util.get_example_number_for_type_and_region(region, kind)
                    .ok()
            })
        })
        .collect();
    let non_geographic: Vec<i32> = util.get_supported_global_network_calling_codes().collect();
    examples.extend(
        non_geographic
            .into_iter()
            .filter_map(|code| util.get_example_number_for_non_geo_entity(code).ok()),
    );
    assert!(examples.len() > 1_000, "{} examples", examples.len());
    let (mut compared, mut valid) = (0, 0);
    for example in &examples {
        let e164 = example.format_as(PhoneNumberFormat::E164).into_owned();
        let (head, last) = e164.split_at(e164.len() - 2);
        let base: u32 = last.parse().unwrap();
        for step in 0..25 {
            let number = format!("{head}{:02}", (base + step * 4) % 100);
            // Shorter than E.164 allows (a few 6-digit examples): refused
            // before either path is asked.
            if number.len() - 1 < MIN_DIGITS {
                continue;
            }
            let expected = as_libphonenumber_reads(&number);
            let got = PhoneNumber::parse(&number).ok().map(|p| {
                (
                    p.e164.clone(),
                    p.kind,
                    p.country.clone(),
                    p.national.clone(),
                )
            });
            assert_eq!(got, expected, "{number}");
            compared += 1;
            valid += usize::from(expected.is_some());
        }
    }
    assert!(valid > compared / 2, "{valid} of {compared} valid");
}

#[test]
fn digits_valid_as_written_are_that_number_even_where_they_begin_like_a_national_prefix() {
    // The general parser strips Belarus's "8" and reads +375 10… (not a
    // number); as E.164 writes it, this is a premium-rate number.
    let phone = PhoneNumber::parse("+3758101234567").unwrap();
    assert_eq!(phone.as_e164(), "+3758101234567");
    assert!(phone.is_premium_or_shared_cost());
    assert_eq!(as_libphonenumber_reads("+3758101234567"), None);
}

#[test]
fn a_national_prefix_kept_after_the_country_code_is_understood() {
    let phone = PhoneNumber::parse("+44 07400 123456").unwrap();
    assert_eq!(phone.as_e164(), "+447400123456");
    assert_eq!(phone.kind(), NumberType::Mobile);
}

#[test]
fn parse_accepts_e164_with_spaces_dashes_and_parentheses() {
    let phone = PhoneNumber::parse("+1 (415) 555-2671").unwrap();
    assert_eq!(phone.as_e164(), "+14155552671");
    assert_eq!(phone.country(), Some("US"));
    assert_eq!(phone.national_number(), "4155552671");
    assert!(!phone.is_premium_or_shared_cost());
}

#[test]
fn the_national_number_keeps_a_leading_zero_where_the_plan_has_one() {
    let italian = PhoneNumber::parse("+390612345678").unwrap();
    assert_eq!(italian.national_number(), "0612345678");
    let french = PhoneNumber::parse("+33612345678").unwrap();
    assert_eq!(french.national_number(), "612345678");
}

#[test]
fn parse_rejects_a_number_without_a_leading_plus() {
    assert_eq!(
        PhoneNumber::parse("14155552671"),
        Err(PhoneNumberError::MissingPlus)
    );
}

#[test]
fn parse_rejects_letters_unicode_digits_and_dots() {
    for input in [
        "+1415555267a",
        "+1415CALLNOW",
        "+１４１５５５５２６７１",
        "+١٤١٥٥٥٥٢٦٧١",
        "+1.415.555.2671",
        "+14155552671\0",
        "+14155552671 ext 5",
    ] {
        assert_eq!(
            PhoneNumber::parse(input),
            Err(PhoneNumberError::NotDigits),
            "{input:?}"
        );
    }
}

#[test]
fn parse_rejects_too_short_too_long_and_impossible_numbers() {
    assert_eq!(PhoneNumber::parse("+"), Err(PhoneNumberError::Length));
    assert_eq!(
        PhoneNumber::parse("+1234567890123456"),
        Err(PhoneNumberError::Length)
    );
    assert_eq!(
        PhoneNumber::parse("+10005550100"),
        Err(PhoneNumberError::Invalid)
    );
}

#[test]
fn parse_flags_premium_rate_and_shared_cost_numbers() {
    assert!(
        PhoneNumber::parse("+19005550123")
            .unwrap()
            .is_premium_or_shared_cost()
    );
    assert!(
        PhoneNumber::parse("+448431234567")
            .unwrap()
            .is_premium_or_shared_cost()
    );
    assert!(
        !PhoneNumber::parse("+447400123456")
            .unwrap()
            .is_premium_or_shared_cost()
    );
}

#[test]
fn costly_number_ranges_get_their_libphonenumber_type() {
    for (number, kind, geographic) in [
        ("+14155552671", NumberType::FixedLineOrMobile, true),
        ("+447400123456", NumberType::Mobile, true),
        ("+447012345678", NumberType::PersonalNumber, true),
        ("+447640123456", NumberType::Pager, true),
        ("+445612345678", NumberType::Voip, true),
        ("+445512345678", NumberType::Uan, true),
        ("+80012345678", NumberType::TollFree, false),
    ] {
        let phone = PhoneNumber::parse(number).unwrap();
        assert_eq!(phone.kind(), kind, "{number}");
        assert_eq!(!phone.is_non_geographic(), geographic, "{number}");
    }
    for satellite in ["+8816212345678", "+870773111632", "+883510012345"] {
        let phone = PhoneNumber::parse(satellite).unwrap();
        assert!(phone.is_non_geographic(), "{satellite}: {:?}", phone.kind());
    }
}

#[test]
fn number_types_parse_from_their_libphonenumber_names() {
    for kind in NumberType::ALL {
        assert_eq!(NumberType::parse(kind.name()), Some(kind));
    }
    assert_eq!(NumberType::parse("MOBILE"), None);
}

#[test]
fn masked_keeps_the_country_prefix_and_the_last_two_digits() {
    let phone = PhoneNumber::parse("+14155552671").unwrap();
    assert_eq!(phone.masked().to_string(), "+1415*****71");
    assert_eq!(format!("{phone:?}"), "PhoneNumber(+1415*****71)");
    let short = PhoneNumber::parse("+6837001").unwrap();
    assert_eq!(short.masked().to_string(), "+68****1");
}
