//! Parse, don't validate: the identifiers a user logs in with. Wire types hold strings; these
//! types can only be built through their `parse` functions, so everything past the surface
//! works with values that are known to be well-formed and already normalised.

use unicode_normalization::UnicodeNormalization;

/// Longest e-mail address accepted (RFC 5321 path limit).
pub const EMAIL_MAX: usize = 254;
/// Longest username accepted, in characters.
pub const USERNAME_MAX: usize = 64;
/// Shortest username accepted, in characters.
pub const USERNAME_MIN: usize = 2;

/// An e-mail address: syntactically valid, no display name, a domain with a TLD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email {
    display: String,
    normalized: String,
}

impl Email {
    /// Parses user input. Surrounding whitespace is ignored; the domain is lower-cased.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let s = input.trim();
        if s.is_empty() {
            return Err("must not be empty");
        }
        if s.len() > EMAIL_MAX {
            return Err("must be at most 254 characters");
        }
        let opts =
            email_address::Options::default().with_required_tld().without_domain_literal().without_display_text();
        let parsed =
            email_address::EmailAddress::parse_with_options(s, opts).map_err(|_| "must be a valid e-mail address")?;
        let local = parsed.local_part();
        let domain = parsed.domain().to_lowercase();
        if local.chars().any(char::is_control) {
            return Err("must be a valid e-mail address");
        }
        let display = format!("{local}@{domain}");
        // Local parts are case-sensitive in theory and case-insensitive everywhere in
        // practice; treating them so stops `Alice@` and `alice@` becoming two accounts.
        let normalized = display.nfc().collect::<String>().to_lowercase();
        Ok(Self { display, normalized })
    }

    /// The address as the user wrote it (domain lower-cased).
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The form that uniqueness and look-ups compare.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }

    /// The domain part, lower-cased.
    pub fn domain(&self) -> &str {
        self.display.rsplit_once('@').map(|(_, d)| d).unwrap_or_default()
    }
}

/// A username: 2 to 64 letters, digits, `.`, `_` or `-`, starting and ending with a letter
/// or digit, never something that parses as a phone number (so a log-in input can never match
/// one account's username and another's phone), and without `@` (so it can never be mistaken
/// for an e-mail address).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Username {
    display: String,
    normalized: String,
}

impl Username {
    /// Parses user input. Surrounding whitespace is ignored.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let display: String = input.trim().nfc().collect();
        let n = display.chars().count();
        if n < USERNAME_MIN {
            return Err("must be at least 2 characters");
        }
        if n > USERNAME_MAX {
            return Err("must be at most 64 characters");
        }
        // Every rule holds for the form look-ups compare too (NFKC, lower case): `４１６…`
        // (fullwidth digits) is the phone number it looks like, `①②③` has no letter, and a
        // compatibility character must not fold into one the rules refuse.
        let normalized = normalize_name(&display);
        for form in [display.as_str(), normalized.as_str()] {
            if !form.chars().all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-')) {
                return Err("may contain only letters, digits, '.', '_' and '-'");
            }
            let first_last_ok = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
            if !first_last_ok(form.chars().next()) || !first_last_ok(form.chars().last()) {
                return Err("must start and end with a letter or digit");
            }
            if !form.chars().any(char::is_alphabetic) || Phone::parse(form).is_ok() {
                return Err("must contain at least one letter");
            }
        }
        Ok(Self { display, normalized })
    }

    /// The username as chosen.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The form that uniqueness and look-ups compare (NFKC, lower case).
    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

/// Case- and compatibility-folded form of a name, for uniqueness and look-ups.
pub fn normalize_name(s: &str) -> String {
    s.nfkc().collect::<String>().to_lowercase()
}

/// A phone number, kept as the user wrote it and compared in a normalised form: formatting
/// (spaces, dots, dashes, parentheses) removed, an optional leading `+`, then 4 to 15 digits
/// (the E.164 maximum). Numbers are not rewritten to international form: `+1 416 555 0100`
/// and `416-555-0100` are different numbers unless the user writes them the same way.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Phone {
    display: String,
    normalized: String,
}

impl Phone {
    /// Parses user input.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let display = input.trim().to_owned();
        if display.is_empty() {
            return Err("must not be empty");
        }
        if display.len() > 32 {
            return Err("must be at most 32 characters");
        }
        let mut normalized = String::with_capacity(16);
        for (i, c) in display.chars().enumerate() {
            match c {
                '+' if i == 0 => normalized.push('+'),
                '0'..='9' => normalized.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => {
                    return Err(
                        "must be a phone number: digits, an optional leading '+', spaces, dashes, dots or parentheses",
                    );
                }
            }
        }
        let digits = normalized.trim_start_matches('+').len();
        if !(4..=15).contains(&digits) {
            return Err("must have between 4 and 15 digits");
        }
        Ok(Self { display, normalized })
    }

    /// The number as written.
    pub fn as_str(&self) -> &str {
        &self.display
    }

    /// The form that uniqueness and look-ups compare.
    pub fn normalized(&self) -> &str {
        &self.normalized
    }
}

/// A tenant slug: 1 to 63 lower-case ASCII letters, digits and dashes, starting with a letter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slug(String);

impl Slug {
    /// Parses a slug.
    pub fn parse(input: &str) -> Result<Self, &'static str> {
        let s = input.trim();
        let ok = !s.is_empty()
            && s.len() <= 63
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !s.ends_with('-');
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err("must be 1 to 63 lower-case letters, digits or dashes, starting with a letter")
        }
    }

    /// The slug.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What a user typed into a "login" box, classified: an e-mail address if it contains `@`,
/// otherwise a username or (if it parses as one) a phone number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginKey {
    /// Match the normalised username.
    Username(String),
    /// Match the normalised e-mail address.
    Email(String),
    /// Match the normalised phone number.
    Phone(String),
    /// Match the username, or failing that the phone number, in one look-up.
    UsernameOrPhone {
        /// Normalised username form of the input.
        username: String,
        /// Normalised phone form of the input.
        phone: String,
    },
    /// Input no account can have (control characters, absurd length): matches nobody, and
    /// stores answer without asking the database.
    Nobody(String),
}

impl LoginKey {
    /// Classifies free-form login input. Never fails: input that cannot be any identifier
    /// still yields a key, which simply matches nobody, so malformed and unknown logins
    /// take exactly the same path.
    pub fn from_login(input: &str) -> Self {
        let s = input.trim();
        if let Some(nobody) = Self::impossible(s) {
            return nobody;
        }
        if s.contains('@') {
            return Self::Email(Email::parse(s).map(|e| e.normalized).unwrap_or_else(|_| s.to_lowercase()));
        }
        match Phone::parse(s) {
            Ok(p) => Self::UsernameOrPhone { username: normalize_name(s), phone: p.normalized },
            Err(_) => Self::Username(normalize_name(s)),
        }
    }

    /// A key that matches the username only.
    pub fn username(input: &str) -> Self {
        let s = input.trim();
        Self::impossible(s).unwrap_or_else(|| Self::Username(normalize_name(s)))
    }

    /// A key that matches the e-mail address only.
    pub fn email(input: &str) -> Self {
        let s = input.trim();
        Self::impossible(s)
            .unwrap_or_else(|| Self::Email(Email::parse(s).map(|e| e.normalized).unwrap_or_else(|_| s.to_lowercase())))
    }

    /// A key that matches the phone number only.
    pub fn phone(input: &str) -> Self {
        let s = input.trim();
        Self::impossible(s)
            .unwrap_or_else(|| Self::Phone(Phone::parse(s).map(|p| p.normalized).unwrap_or_else(|_| s.to_owned())))
    }

    // No identifier holds control characters or runs past the longest e-mail address.
    fn impossible(s: &str) -> Option<Self> {
        (s.chars().any(char::is_control) || s.len() > EMAIL_MAX).then(|| {
            Self::Nobody(s.chars().filter(|c| !c.is_control()).take(EMAIL_MAX).collect::<String>().to_lowercase())
        })
    }

    /// The text rate limits are keyed on: the same for every spelling of one identifier (a
    /// phone number typed with or without spaces, dashes or parentheses, in the `login` field
    /// or the `phone` field, is one key).
    pub fn limiter_key(&self) -> String {
        match self {
            Self::Username(u) => format!("u:{u}"),
            Self::Email(e) => format!("e:{e}"),
            Self::Phone(p) | Self::UsernameOrPhone { phone: p, .. } => format!("p:{p}"),
            Self::Nobody(n) => format!("n:{n}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_normalise_case_and_reject_junk() {
        let e = Email::parse("  Alice.Smith@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Alice.Smith@example.com");
        assert_eq!(e.normalized(), "alice.smith@example.com");
        assert_eq!(e.domain(), "example.com");
        for bad in ["", "alice", "alice@", "@example.com", "a@localhost", "Alice <a@example.com>", "a@[127.0.0.1]"] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(Email::parse(&format!("{}@example.com", "a".repeat(250))).is_err());
    }

    #[test]
    fn usernames_fold_case_and_refuse_ambiguous_forms() {
        let u = Username::parse("Alice_01").unwrap();
        assert_eq!(u.as_str(), "Alice_01");
        assert_eq!(u.normalized(), "alice_01");
        // Compatibility forms fold together: fullwidth letters are the same name.
        assert_eq!(Username::parse("ＡＬＩＣＥ").unwrap().normalized(), "alice");
        assert_eq!(Username::parse("Zoë").unwrap().normalized(), "zoë");
        for bad in [
            "a",
            "-alice",
            "alice.",
            "al ice",
            "al@ice",
            "123456",
            "416-555-0100",
            "416.555.0100",
            &"x".repeat(65),
            "ali\u{0}ce",
        ] {
            assert!(Username::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn usernames_are_checked_in_the_form_look_ups_compare() {
        assert_eq!(
            Username::parse("４１６５５５０１００"),
            Err("must contain at least one letter"),
            "fullwidth digits"
        );
        assert_eq!(Username::parse("①②③"), Err("must contain at least one letter"));
        assert_eq!(Username::parse("1.2.3"), Err("must contain at least one letter"));
        assert!(Username::parse("½x").is_err(), "folds into a character usernames refuse");
        assert_eq!(Username::parse("Ａｄａ").map(|u| u.normalized().to_owned()), Ok("ada".to_owned()));
        assert!(Username::parse("ada42").is_ok());
        assert!(Username::parse("42ada").is_ok());
    }

    #[test]
    fn phones_keep_digits_and_leading_plus() {
        let p = Phone::parse("+1 (416) 555-0100").unwrap();
        assert_eq!(p.normalized(), "+14165550100");
        assert_eq!(p.as_str(), "+1 (416) 555-0100");
        assert_eq!(Phone::parse("416.555.0100").unwrap().normalized(), "4165550100");
        for bad in ["", "12", "+", "1+2345", "call me", "1234567890123456"] {
            assert!(Phone::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn login_input_is_classified() {
        assert_eq!(LoginKey::from_login("Bob@Example.com"), LoginKey::Email("bob@example.com".into()));
        assert_eq!(LoginKey::from_login("Bob"), LoginKey::Username("bob".into()));
        assert_eq!(
            LoginKey::from_login("+1 416 555 0100"),
            LoginKey::UsernameOrPhone { username: "+1 416 555 0100".into(), phone: "+14165550100".into() }
        );
        // Garbage still yields a key (matching nobody) rather than an error.
        assert_eq!(LoginKey::from_login("no@such@thing"), LoginKey::Email("no@such@thing".into()));
        assert!(matches!(LoginKey::from_login("ab\u{0}c"), LoginKey::Nobody(_)));
        assert!(matches!(LoginKey::email(&"a".repeat(300)), LoginKey::Nobody(_)));
    }

    #[test]
    fn every_spelling_of_a_phone_number_shares_one_limit() {
        let keys: Vec<String> = ["4165550100", "416 555 0100", "416.555.0100", "(416) 555-0100", "416-5550100"]
            .iter()
            .map(|s| LoginKey::from_login(s).limiter_key())
            .collect();
        assert!(keys.iter().all(|k| k == "p:4165550100"), "{keys:?}");
        assert_eq!(LoginKey::phone("416 555 0100").limiter_key(), "p:4165550100");
        assert_eq!(LoginKey::from_login("Alice").limiter_key(), LoginKey::username("alice").limiter_key());
    }

    #[test]
    fn slugs() {
        assert!(Slug::parse("acme-2").is_ok());
        for bad in ["", "Acme", "2acme", "acme-", "a_b", &"a".repeat(64)] {
            assert!(Slug::parse(bad).is_err(), "{bad:?}");
        }
    }
}
