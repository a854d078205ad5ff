//! DSMR P1: the telegram decoder and the stream splitter (which must account for every byte:
//! what it returns as telegrams and discards adds up to what was pushed).
#![no_main]

use libfuzzer_sys::fuzz_target;
use meterd_protocols::dsmr::{self, Event, Splitter};

fuzz_target!(|data: &[u8]| {
    let _ = dsmr::decode(data);
    let mut splitter = Splitter::new(512);
    let mut seen = 0;
    for chunk in data.chunks(13) {
        splitter.push(chunk);
        while let Some(event) = splitter.next_event() {
            seen += match event {
                Event::Telegram(t) => {
                    let _ = dsmr::decode(&t);
                    t.len()
                }
                Event::Discarded { bytes, .. } => bytes.len(),
            };
        }
    }
    if let Some(Event::Discarded { bytes, .. }) = splitter.flush() {
        seen += bytes.len();
    }
    assert_eq!(seen, data.len(), "splitter lost or invented bytes");
});
