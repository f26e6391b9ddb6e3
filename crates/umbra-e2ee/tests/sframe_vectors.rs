//! Every official SFrame test vector: RFC 9605 Appendix C (header, AES-CTR+HMAC, SFrame for
//! suites 1–5) and the AES-256-CTR suites 6–8 of draft-barnes-sframe-iana-256.

use serde_json::Value;
use umbra_e2ee::{AuthFailed, CipherSuite, Header, SframeKey};

fn load(name: &str) -> Value {
    let path = format!("{}/../../testdata/sframe/{name}", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(&path).expect(&path)).expect("vector file is JSON")
}

fn hex(v: &Value) -> Vec<u8> {
    hex::decode(v.as_str().expect("hex string")).expect("valid hex")
}

fn suite(v: &Value) -> CipherSuite {
    CipherSuite::from_id(v["cipher_suite"].as_u64().unwrap() as u16).unwrap()
}

#[test]
fn header_vectors() {
    let vectors = load("rfc9605-test-vectors.json");
    let list = vectors["header"].as_array().unwrap();
    assert_eq!(list.len(), 289);
    for v in list {
        let kid = v["kid"].as_u64().unwrap();
        let ctr = v["ctr"].as_u64().unwrap();
        let encoded = hex(&v["encoded"]);
        let header = Header::new(kid, ctr);
        assert_eq!(header.encode(), encoded, "encode kid={kid} ctr={ctr}");
        assert_eq!(header.len(), encoded.len());
        assert_eq!(Header::decode(&encoded).unwrap(), (header, encoded.len()), "decode {encoded:02x?}");
        // Every strict prefix is truncated, never misread.
        for cut in 0..encoded.len() {
            assert!(Header::decode(&encoded[..cut]).is_err());
        }
    }
}

#[test]
fn aead_vectors() {
    let vectors = load("rfc9605-test-vectors.json");
    let mut count = 0;
    for group in ["aes_ctr_hmac", "aes_256_ctr_hmac"] {
        for v in vectors[group].as_array().unwrap() {
            let suite = suite(v);
            let nonce: [u8; 12] = hex(&v["nonce"]).try_into().unwrap();
            // The AEAD vectors give the nonce directly: a zero salt and counter 0 reproduce it.
            let key = SframeKey::from_parts(suite, &hex(&v["key"]), nonce).unwrap();
            let aad = hex(&v["aad"]);
            let pt = hex(&v["pt"]);
            let ct = hex(&v["ct"]);
            assert_eq!(key.nonce(0), nonce);
            assert_eq!(key.seal_raw(0, &aad, &pt).unwrap(), ct, "suite {suite}");
            assert_eq!(key.open_raw(0, &aad, &ct).unwrap(), Ok(pt.clone()));
            for i in 0..ct.len() {
                let mut bad = ct.clone();
                bad[i] ^= 1;
                assert_eq!(key.open_raw(0, &aad, &bad).unwrap(), Err(AuthFailed), "flip at {i}");
            }
            assert_eq!(key.open_raw(0, b"other aad", &ct).unwrap(), Err(AuthFailed));
            count += 1;
        }
    }
    assert_eq!(count, 6);
}

#[test]
fn sframe_vectors() {
    let mut count = 0;
    for (file, group) in
        [("rfc9605-test-vectors.json", "sframe"), ("aes256-ctr-hmac-test-vectors.json", "sframe_aes_256_ctr_hmac")]
    {
        let vectors = load(file);
        for v in vectors[group].as_array().unwrap() {
            let suite = suite(v);
            let kid = v["kid"].as_u64().unwrap();
            let ctr = v["ctr"].as_u64().unwrap();
            let base_key = hex(&v["base_key"]);
            let key = SframeKey::derive(suite, &base_key, kid).unwrap();
            let expected_key =
                SframeKey::from_parts(suite, &hex(&v["sframe_key"]), hex(&v["sframe_salt"]).try_into().unwrap())
                    .unwrap();
            assert_eq!(key.salt().to_vec(), hex(&v["sframe_salt"]), "salt, suite {suite}");
            assert_eq!(key.nonce(ctr).to_vec(), hex(&v["nonce"]), "nonce, suite {suite}");
            let metadata = hex(&v["metadata"]);
            let pt = hex(&v["pt"]);
            let ct = hex(&v["ct"]);
            let aad = hex(&v["aad"]);
            let header_len = Header::new(kid, ctr).len();
            assert_eq!(&aad[..header_len], &ct[..header_len]);
            assert_eq!(&aad[header_len..], metadata.as_slice());
            // Derived key and the vector's key produce the same ciphertext.
            assert_eq!(key.encrypt(kid, ctr, &metadata, &pt).unwrap(), ct, "encrypt, suite {suite}");
            assert_eq!(expected_key.encrypt(kid, ctr, &metadata, &pt).unwrap(), ct);
            let (header, plain) = key.decrypt(&metadata, &ct).unwrap().unwrap();
            assert_eq!((header.kid, header.ctr), (kid, ctr));
            assert_eq!(plain, pt);
            // Any flipped bit, in the header, ciphertext or tag, fails authentication.
            for i in 0..ct.len() {
                let mut bad = ct.clone();
                bad[i] ^= 0x40;
                assert!(!matches!(key.decrypt(&metadata, &bad), Ok(Ok(_))), "flip at {i}");
            }
            assert!(key.decrypt(b"other metadata", &ct).unwrap().is_err());
            count += 1;
        }
    }
    assert_eq!(count, 8);
}
