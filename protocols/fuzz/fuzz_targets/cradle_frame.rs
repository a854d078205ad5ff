//! Frame decoder: arbitrary bytes must never panic, and every frame it yields must re-encode
//! to bytes that parse back to the same frame.
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterd_protocols::cradle::frame::{FrameDecoder, parse_frame};

fuzz_target!(|data: &[u8]| {
    let _ = parse_frame(data);
    let mut dec = FrameDecoder::new();
    // Feed in two pieces so the split-read path is exercised too.
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    for piece in [&data[..cut], &data[cut..]] {
        dec.push(piece);
        while let Some(r) = dec.next_frame() {
            if let Ok(frame) = r {
                let bytes = frame.encode().expect("decoded frames fit");
                let (again, used) = parse_frame(&bytes).expect("re-encoded frame parses");
                assert_eq!(used, bytes.len());
                assert_eq!(again, frame);
            }
        }
    }
});
