//! The configuration file: any text is a configuration or an error, never a panic; an accepted
//! configuration prints (`meterd check-config`) and reads back as itself.
#![no_main]
use libfuzzer_sys::fuzz_target;
use meterd::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(config) = Config::parse(text, "fuzz.toml") else { return };
    let _ = config.effective_toml();
    let printed = toml::to_string(&config).expect("an accepted configuration prints");
    let again = Config::parse(&printed, "printed.toml").expect("a printed configuration parses");
    assert_eq!(config, again, "configuration round trip");
});
