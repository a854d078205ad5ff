//! Wireless M-Bus: CRC stripping and the whole layer stack, with keys for the ids the fuzzer is
//! likely to build so the decryption paths run too.
#![no_main]
use libfuzzer_sys::fuzz_target;
use meterd_protocols::decode::Keys;
use meterd_protocols::wmbus;

fuzz_target!(|data: &[u8]| {
    let mut keys = Keys::new();
    if data.len() >= 8 {
        let id = format!("{:02X}{:02X}{:02X}{:02X}", data[7], data[6], data[5], data[4]);
        keys.insert(&id, [0x42; 16]);
    }
    let _ = wmbus::dll::strip(data);
    let _ = wmbus::looks_like(data);
    let _ = wmbus::decode(data, &keys);
});
