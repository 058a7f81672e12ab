use super::*;

fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

fn rid() -> RecordingId {
    RecordingId::from_bytes([0x5a; 16])
}

// RFC 9180 Appendix A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305, base
// mode, first encryption (sequence number 0). Values from the RFC text.
const A21_INFO: &str = "4f6465206f6e2061204772656369616e2055726e";
const A21_IKM_E: &str = "909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b";
const A21_IKM_R: &str = "1ac01f181fdf9f352797655161c58b75c656a6cc2716dcb66372da835542e1df";
const A21_PK_RM: &str = "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a";
const A21_SK_RM: &str = "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb";
const A21_ENC: &str = "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a";
const A21_PT: &str = "4265617574792069732074727574682c20747275746820626561757479";
const A21_AAD: &str = "436f756e742d30";
const A21_CT: &str =
    "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db21993c62ce81883d2dd1b51a28";

#[test]
fn rfc9180_a21_known_answer_seal() {
    let pk = PublicKey::from_bytes(hex32(A21_PK_RM)).unwrap();
    let mut buf = hex::decode(A21_PT).unwrap();
    let (enc, tag) = hpke_seal(
        &pk,
        &hex::decode(A21_INFO).unwrap(),
        &hex::decode(A21_AAD).unwrap(),
        &mut buf,
        &hex32(A21_IKM_E),
    )
    .unwrap();
    assert_eq!(hex::encode(enc), A21_ENC);
    buf.extend_from_slice(&tag);
    assert_eq!(hex::encode(&buf), A21_CT);
}

#[test]
fn rfc9180_a21_known_answer_open_and_keys() {
    // The published skRm is DeriveKeyPair's raw output; loading it clamps it (RFC 9180 §7.1.2)
    // and must still give pkRm. DeriveKeyPair(ikmR) must give the same pair.
    let sk = SecretKey::from_bytes(hex32(A21_SK_RM));
    assert_eq!(hex::encode(sk.public_key().to_bytes()), A21_PK_RM);
    let (derived, _) = <WrapKem as hpke::Kem>::derive_keypair(&hex32(A21_IKM_R));
    assert_eq!(
        hex::encode(SecretKey { inner: derived }.public_key().to_bytes()),
        A21_PK_RM
    );
    let ct = hex::decode(A21_CT).unwrap();
    let (body, tag) = ct.split_at(ct.len() - 16);
    let mut buf = body.to_vec();
    hpke_open(
        &sk,
        &hex32(A21_ENC),
        &hex::decode(A21_INFO).unwrap(),
        &hex::decode(A21_AAD).unwrap(),
        &mut buf,
        tag,
    )
    .unwrap();
    assert_eq!(hex::encode(&buf), A21_PT);
    // One flipped tag bit must fail and leave no plaintext behind.
    let mut bad_tag = tag.to_vec();
    bad_tag[0] ^= 1;
    let mut buf = body.to_vec();
    let err = hpke_open(
        &sk,
        &hex32(A21_ENC),
        &hex::decode(A21_INFO).unwrap(),
        &hex::decode(A21_AAD).unwrap(),
        &mut buf,
        &bad_tag,
    );
    assert!(matches!(err, Err(KeyError::Unwrap)));
    assert_ne!(hex::encode(&buf), A21_PT);
}

#[test]
fn wrap_unwrap_round_trip_and_encoding() {
    let epoch_sk = SecretKey::generate().unwrap();
    let dek = DataKey::from_bytes([0x42; 32]);
    let w = wrap(&dek, rid(), EpochId(20_500), &epoch_sk.public_key()).unwrap();
    assert_eq!(w.recipient(), Recipient::Epoch);
    assert_eq!(w.recording_id(), rid());
    assert_eq!(w.epoch(), EpochId(20_500));
    let bytes = w.to_bytes();
    assert_eq!(bytes.len(), WrappedKey::LEN);
    assert_eq!(bytes.len(), 102);
    assert_eq!(bytes[0], 1);
    assert_eq!(bytes[1], 1);
    assert_eq!(&bytes[2..18], rid().as_bytes());
    assert_eq!(&bytes[18..22], &20_500u32.to_be_bytes());
    let parsed = WrappedKey::from_bytes(&bytes).unwrap();
    assert_eq!(parsed, w);
    let back = unwrap(&parsed, &epoch_sk).unwrap();
    assert_eq!(back.expose(), &[0x42; 32]);
    // Fresh ephemeral key every time.
    let w2 = wrap(&dek, rid(), EpochId(20_500), &epoch_sk.public_key()).unwrap();
    assert_ne!(w2.to_bytes(), bytes);
}

#[test]
fn unwrap_fails_with_other_key_or_altered_binding() {
    let epoch_sk = SecretKey::generate().unwrap();
    let other = SecretKey::generate().unwrap();
    let dek = DataKey::from_bytes([9; 32]);
    let w = wrap(&dek, rid(), EpochId(7), &epoch_sk.public_key()).unwrap();
    assert!(matches!(unwrap(&w, &other), Err(KeyError::Unwrap)));
    let bytes = w.to_bytes();
    // Any single-bit change anywhere after the version byte must be rejected: the kind, the
    // recording id and the epoch id through `info`, enc and ciphertext through HPKE itself.
    for byte in 1..bytes.len() {
        let mut b = bytes.clone();
        b[byte] ^= 0x04;
        match WrappedKey::from_bytes(&b) {
            Ok(altered) => assert!(
                matches!(unwrap(&altered, &epoch_sk), Err(KeyError::Unwrap)),
                "flip at byte {byte} still unwrapped"
            ),
            Err(KeyError::MalformedWrappedKey { .. }) => assert_eq!(byte, 1),
            Err(e) => panic!("unexpected error {e}"),
        }
    }
}

#[test]
fn wrapped_key_rejects_bad_encodings() {
    assert!(matches!(
        WrappedKey::from_bytes(&[]),
        Err(KeyError::MalformedWrappedKey { .. })
    ));
    let mut v2 = vec![0u8; WrappedKey::LEN];
    v2[0] = 2;
    assert!(matches!(
        WrappedKey::from_bytes(&v2),
        Err(KeyError::UnsupportedWrapVersion {
            found: 2,
            supported: 1
        })
    ));
    let mut short = vec![0u8; WrappedKey::LEN - 1];
    short[0] = 1;
    short[1] = 1;
    assert!(matches!(
        WrappedKey::from_bytes(&short),
        Err(KeyError::MalformedWrappedKey { .. })
    ));
    let mut kind = vec![0u8; WrappedKey::LEN];
    kind[0] = 1;
    kind[1] = 9;
    assert!(matches!(
        WrappedKey::from_bytes(&kind),
        Err(KeyError::MalformedWrappedKey { .. })
    ));
}

#[test]
fn rewrap_to_operator_and_hold() {
    let epoch_sk = SecretKey::generate().unwrap();
    let operator = SecretKey::generate().unwrap();
    let hold = SecretKey::generate().unwrap();
    let dek = DataKey::from_bytes([3; 32]);
    let w = wrap(&dek, rid(), EpochId(11), &epoch_sk.public_key()).unwrap();
    let op = rewrap(&w, &epoch_sk, Recipient::Operator, &operator.public_key()).unwrap();
    assert_eq!(op.recipient(), Recipient::Operator);
    assert_eq!(op.recording_id(), rid());
    assert_eq!(op.epoch(), EpochId(11));
    assert_eq!(unwrap(&op, &operator).unwrap().expose(), &[3; 32]);
    // The epoch key cannot open the operator's wrap, nor another operator.
    assert!(matches!(unwrap(&op, &epoch_sk), Err(KeyError::Unwrap)));
    assert!(matches!(unwrap(&op, &hold), Err(KeyError::Unwrap)));
    // Relabelling an operator wrap as a hold wrap breaks it (kind is bound in `info`).
    let mut relabelled = op.to_bytes();
    relabelled[1] = 3;
    let relabelled = WrappedKey::from_bytes(&relabelled).unwrap();
    assert!(matches!(
        unwrap(&relabelled, &operator),
        Err(KeyError::Unwrap)
    ));
    let h = rewrap(&w, &epoch_sk, Recipient::Hold, &hold.public_key()).unwrap();
    assert_eq!(unwrap(&h, &hold).unwrap().expose(), &[3; 32]);
    // Re-wrapping needs the epoch secret.
    assert!(matches!(
        rewrap(&w, &operator, Recipient::Operator, &operator.public_key()),
        Err(KeyError::Unwrap)
    ));
}

#[test]
fn wrong_epoch_in_binding_fails() {
    let epoch_sk = SecretKey::generate().unwrap();
    let dek = DataKey::from_bytes([1; 32]);
    let w = wrap(&dek, rid(), EpochId(100), &epoch_sk.public_key()).unwrap();
    let mut b = w.to_bytes();
    b[18..22].copy_from_slice(&101u32.to_be_bytes());
    let moved = WrappedKey::from_bytes(&b).unwrap();
    assert_eq!(moved.epoch(), EpochId(101));
    assert!(matches!(unwrap(&moved, &epoch_sk), Err(KeyError::Unwrap)));
}

#[test]
fn debug_output_has_no_key_material() {
    let epoch_sk = SecretKey::generate().unwrap();
    let w = wrap(
        &DataKey::from_bytes([0xab; 32]),
        rid(),
        EpochId(1),
        &epoch_sk.public_key(),
    )
    .unwrap();
    let dbg = format!("{w:?}");
    assert!(dbg.contains("Epoch"));
    assert!(!dbg.contains(&hex::encode(&w.to_bytes()[22..54])));
}
