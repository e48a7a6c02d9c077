//! The keyed hash (`Anonymizer::hash`) and the number rounding (`round_u64`, `round_i64`,
//! `round_f64`, `round_number`) of telemetry-core's anonymize module, on any key, name,
//! precision and number (floats from any bit pattern: NaN, infinities, subnormals, -0).
//!
//! Must hold, beyond "never panics": the hash is stable (the same key and name give the
//! same 16 lowercase hex characters from a fresh anonymizer, whatever its precision);
//! rounding never increases the magnitude nor flips the sign, keeps the leading digits,
//! is idempotent, and gives null exactly for NaN and infinities; `round_number` agrees
//! with the typed functions.
#![no_main]

use libfuzzer_sys::arbitrary::{Arbitrary, Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use serde_json::{Number, Value};
use telemetry_core::anonymize::{round_f64, round_i64, round_number, round_u64, Anonymizer};

fn digits(x: u64) -> u32 {
    x.checked_ilog10().map_or(1, |d| d + 1)
}

fn check_u64(x: u64, p: u32) {
    let r = round_u64(x, p);
    assert!(r <= x, "round_u64({x}, {p}) = {r}");
    assert_eq!(round_u64(r, p), r, "round_u64 not idempotent on {x}, {p}");
    let kept = p.max(1);
    if digits(x) > kept {
        // The dropped part is less than one unit of the last digit kept, and r ends in zeros.
        let unit = 10u64.pow(digits(x) - kept);
        assert!(x - r < unit && r % unit == 0, "round_u64({x}, {p}) = {r}");
        assert_eq!(
            digits(r),
            digits(x),
            "round_u64({x}, {p}) = {r} lost a digit"
        );
    } else {
        assert_eq!(r, x, "round_u64({x}, {p}) changed a short number");
    }
    assert_eq!(round_number(&Number::from(x), p), Value::from(r));
}

fn check_i64(x: i64, p: u32) {
    let r = round_i64(x, p);
    assert!(
        r.unsigned_abs() <= x.unsigned_abs(),
        "round_i64({x}, {p}) = {r}"
    );
    assert!(
        r == 0 || r.signum() == x.signum(),
        "round_i64({x}, {p}) = {r}"
    );
    assert_eq!(r.unsigned_abs(), round_u64(x.unsigned_abs(), p));
    assert_eq!(round_i64(r, p), r, "round_i64 not idempotent on {x}, {p}");
    assert_eq!(round_number(&Number::from(x), p), Value::from(r));
}

fn check_f64(x: f64, p: u32) {
    let v = round_f64(x, p);
    if !x.is_finite() {
        assert_eq!(v, Value::Null, "round_f64({x}, {p})");
        return;
    }
    let r = v
        .as_f64()
        .unwrap_or_else(|| panic!("round_f64({x:e}, {p}) = {v}, not a number"));
    assert!(r.abs() <= x.abs(), "round_f64({x:e}, {p}) = {r:e}: larger");
    assert!(
        r == 0.0 || r.is_sign_negative() == x.is_sign_negative(),
        "round_f64({x:e}, {p}) = {r:e}: sign"
    );
    // Up to 15 significant digits, a decimal reads back as itself: the rounded value has
    // at most `p` digits and rounding it again changes nothing.
    if p <= 15 {
        let repr = format!("{r:e}");
        let mantissa = repr.split('e').next().unwrap_or("");
        let n = mantissa.chars().filter(char::is_ascii_digit).count();
        assert!(
            n <= p.max(1) as usize,
            "round_f64({x:e}, {p}) = {repr}: {n} digits"
        );
        assert_eq!(round_f64(r, p), v, "round_f64 not idempotent on {x:e}, {p}");
    }
    if let Some(n) = Number::from_f64(x) {
        assert_eq!(round_number(&n, p), v, "round_number({x:e}, {p})");
    }
}

fn run(u: &mut Unstructured) -> Result<()> {
    let key = <[u8; 32]>::arbitrary(u)?;
    // Mostly the precisions in use (1-20), sometimes any.
    let p = if u.ratio(7, 8)? {
        u.int_in_range(0..=20)?
    } else {
        u32::arbitrary(u)?
    };
    let x_u = u64::arbitrary(u)?;
    let x_i = i64::arbitrary(u)?;
    let x_f = f64::from_bits(u64::arbitrary(u)?);
    let name = String::from_utf8_lossy(u.bytes(u.len())?).into_owned();

    let h = Anonymizer::new(key, p).hash(&name);
    assert_eq!(h.len(), 16, "{h:?}");
    assert!(
        h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{h:?}"
    );
    assert_eq!(
        Anonymizer::new(key, p.wrapping_add(1)).hash(&name),
        h,
        "unstable hash"
    );
    assert_eq!(Anonymizer::new(key, p).hash(&name), h, "unstable hash");

    check_u64(x_u, p);
    check_i64(x_i, p);
    check_f64(x_f, p);
    // The same number as the other types see it.
    check_f64(x_u as f64, p);
    check_f64(x_i as f64, p);
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
