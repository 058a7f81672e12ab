//! The whole key path of a recording, as the gateway, the escrow and the CLI run it: wrap the
//! data key to the epoch, re-wrap it to an operator, unwrap, and open the file checking the ids.
#![allow(clippy::unwrap_used)] // test code: a panic is the failure report

mod common;

use callseal_recording::keys::{
    DataKey, EpochId, Recipient, RecordingId, SecretKey, rewrap, unwrap, wrap,
};
use callseal_recording::{Leg, ReadError, Reader, Writer, WriterConfig};
use std::time::Duration;

#[test]
fn gateway_escrow_operator_round_trip() {
    let epoch_secret = SecretKey::generate().unwrap();
    let operator = SecretKey::generate().unwrap();
    let id = RecordingId::generate().unwrap();
    let epoch = EpochId(20_454);

    // Gateway: write, wrap, forget the key.
    let file = {
        let key = DataKey::generate().unwrap();
        let mut w = Writer::new(Vec::new(), &key, id, epoch, WriterConfig::default()).unwrap();
        for i in 0..10u32 {
            w.push_frame(
                Leg::Caller,
                160 * i,
                Duration::from_millis(20 * u64::from(i)),
                0,
                &[0x11; 160],
            )
            .unwrap();
        }
        let deposited = wrap(&key, id, epoch, &epoch_secret.public_key()).unwrap();
        (w.finish().unwrap(), deposited)
    };
    let (file, deposited) = file;

    // Escrow: release to the operator.
    let released = rewrap(
        &deposited,
        &epoch_secret,
        Recipient::Operator,
        &operator.public_key(),
    )
    .unwrap();
    assert_eq!(released.recording_id(), id);
    assert_eq!(released.epoch(), epoch);

    // CLI: unwrap with the operator key, open checking the ids.
    let key = unwrap(&released, &operator).unwrap();
    let reader =
        Reader::new_expecting(&file[..], &key, released.recording_id(), released.epoch()).unwrap();
    assert_eq!(reader.count(), 10);

    // The epoch key does not open the operator's copy, and another recording's key is refused.
    assert!(unwrap(&released, &epoch_secret).is_err());
    let other = DataKey::generate().unwrap();
    assert_eq!(
        Reader::new(&file[..], &other).unwrap_err(),
        ReadError::WrongKey
    );
}
