//! TOTP (RFC 6238 over RFC 4226's HOTP): HMAC-SHA-1, 6 digits, 30-second steps; the
//! authenticator-app format (`otpauth://totp/...`, base32 secret).

use ring::hmac;
use subtle::ConstantTimeEq;

/// Length of a step, seconds.
pub(crate) const STEP: i64 = 30;

/// The code for `secret` at time step `step`.
pub(crate) fn code(secret: &[u8], step: i64) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY, secret);
    let tag = hmac::sign(&key, &step.to_be_bytes());
    let h = tag.as_ref();
    let offset = usize::from(h[h.len() - 1] & 0x0f);
    let bin = (u32::from(h[offset]) & 0x7f) << 24
        | u32::from(h[offset + 1]) << 16
        | u32::from(h[offset + 2]) << 8
        | u32::from(h[offset + 3]);
    format!("{:06}", bin % 1_000_000)
}

/// The step (of `now - 1 .. now + 1`) whose code `given` is, compared in constant time.
pub(crate) fn matching_step(secret: &[u8], given: &str, now: i64) -> Option<i64> {
    let given = given.trim();
    if given.len() != 6 || !given.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let current = now.div_euclid(STEP);
    let mut found = None;
    for step in [current - 1, current, current + 1] {
        if bool::from(code(secret, step).as_bytes().ct_eq(given.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

pub(crate) fn encode_secret(secret: &[u8]) -> String {
    data_encoding::BASE32_NOPAD.encode(secret)
}

pub(crate) fn decode_secret(text: &str) -> Option<Vec<u8>> {
    data_encoding::BASE32_NOPAD.decode(text.as_bytes()).ok()
}

/// The enrolment URI authenticator apps read (usually from a QR code).
pub(crate) fn uri(username: &str, secret: &[u8]) -> String {
    let label: String = form_urlencoded::byte_serialize(username.as_bytes()).collect();
    format!(
        "otpauth://totp/Caduceus:{label}?secret={}&issuer=Caduceus&algorithm=SHA1&digits=6&period=30",
        encode_secret(secret)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc6238_sha1_vectors() {
        // RFC 6238 appendix B (8 digits there; the last 6 are the 6-digit code).
        let secret = b"12345678901234567890";
        for (t, eight) in [
            (59, "94287082"),
            (1_111_111_109, "07081804"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            assert_eq!(code(secret, t / STEP), eight[2..]);
        }
    }

    #[test]
    fn window_is_one_step_each_side() {
        let secret = b"12345678901234567890";
        let now = 1_234_567_890;
        let step = now / STEP;
        assert_eq!(
            matching_step(secret, &code(secret, step - 1), now),
            Some(step - 1)
        );
        assert_eq!(
            matching_step(secret, &code(secret, step + 1), now),
            Some(step + 1)
        );
        assert_eq!(matching_step(secret, &code(secret, step + 2), now), None);
        assert_eq!(matching_step(secret, "12345", now), None);
        assert_eq!(matching_step(secret, "abcdef", now), None);
    }

    #[test]
    fn secrets_round_trip_in_base32() {
        let s = [7u8; 20];
        assert_eq!(decode_secret(&encode_secret(&s)).as_deref(), Some(&s[..]));
        assert!(uri("ann", &s).starts_with("otpauth://totp/Caduceus:ann?secret="));
    }
}
