//! The AES primitives wireless M-Bus security uses (EN 13757-7 / OMS vol. 2): AES-128-CBC
//! (TPL modes 5 and 7), AES-128-CTR (ELL), AES-CMAC (mode 7 key derivation and MAC).

use aes::Aes128;
use aes::cipher::array::Array;
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, KeyInit, KeyIvInit, StreamCipher};
use cmac::{Cmac, Mac};

/// Decrypts whole 16-byte blocks of `buf` in place with AES-128-CBC (any tail is left alone).
pub fn cbc_decrypt(key: &[u8; 16], iv: &[u8; 16], buf: &mut [u8]) {
    let (blocks, _) = Array::slice_as_chunks_mut(buf);
    cbc::Decryptor::<Aes128>::new(key.into(), iv.into()).decrypt_blocks(blocks);
}

/// Encrypts whole 16-byte blocks of `buf` in place with AES-128-CBC (for building telegrams).
pub fn cbc_encrypt(key: &[u8; 16], iv: &[u8; 16], buf: &mut [u8]) {
    let (blocks, _) = Array::slice_as_chunks_mut(buf);
    cbc::Encryptor::<Aes128>::new(key.into(), iv.into()).encrypt_blocks(blocks);
}

/// Applies the AES-128-CTR keystream (128-bit big-endian counter starting at `counter`).
pub fn ctr_apply(key: &[u8; 16], counter: &[u8; 16], buf: &mut [u8]) {
    ctr::Ctr128BE::<Aes128>::new(key.into(), counter.into()).apply_keystream(buf);
}

/// AES-CMAC over the concatenation of `parts`.
pub fn cmac(key: &[u8; 16], parts: &[&[u8]]) -> [u8; 16] {
    let mut mac = <Cmac<Aes128> as KeyInit>::new(key.into());
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 4493 test vectors (AES-128 CMAC).
    #[test]
    fn cmac_matches_rfc_4493() {
        let key = hex_literal::hex!("2b7e151628aed2a6abf7158809cf4f3c");
        assert_eq!(cmac(&key, &[]), hex_literal::hex!("bb1d6929e95937287fa37d129b756746"));
        let m = hex_literal::hex!("6bc1bee22e409f96e93d7e117393172a");
        assert_eq!(
            cmac(&key, &[&m[..8], &m[8..]]),
            hex_literal::hex!("070a16b46b4d4144f79bdd9dd04a287c")
        );
    }

    #[test]
    fn cbc_round_trip() {
        let key = [7u8; 16];
        let iv = [9u8; 16];
        let mut buf = *b"0123456789abcdef0123456789abcdefXY";
        cbc_encrypt(&key, &iv, &mut buf);
        assert_ne!(&buf[..32], b"0123456789abcdef0123456789abcdef");
        assert_eq!(&buf[32..], b"XY");
        cbc_decrypt(&key, &iv, &mut buf);
        assert_eq!(&buf, b"0123456789abcdef0123456789abcdefXY");
    }
}
