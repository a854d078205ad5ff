//! The handheld recorder cradle link: frames, sliding window, session messages and records.
