//! Property tests: arbitrary bytes never panic the decoder, and whatever decodes re-encodes
//! to something that decodes to the same value.

use proptest::prelude::*;
use skiff_proto::{decode, decode_message, descriptor, encode_message, table::MESSAGES};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn envelopes_never_panic(body in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&body);
        let mut framed = b"k8s\0".to_vec();
        framed.extend(&body);
        let _ = decode(&framed);
    }

    #[test]
    fn messages_never_panic_and_round_trip(
        index in 0..MESSAGES.len(),
        raw in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let msg = descriptor::message(index);
        if let Ok(value) = decode_message(msg, &raw) {
            if let Ok(bytes) = encode_message(msg, &value) {
                let again = decode_message(msg, &bytes);
                prop_assert!(again.is_ok(), "{}: re-encoded bytes do not decode", msg.name);
            }
        }
    }
}
