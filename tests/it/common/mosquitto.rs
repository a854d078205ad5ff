//! The tests' private mosquitto: meterd's own launcher ([`meterd::simulate::broker`]), except
//! that a missing mosquitto fails the test instead of skipping.

pub use meterd::simulate::broker::Mosquitto;

/// Starts a private broker (`persistence`: un-acked QoS 1 messages survive [`Mosquitto::restart`]).
pub fn start(persistence: bool) -> Mosquitto {
    Mosquitto::start(persistence)
        .expect("starting mosquitto")
        .unwrap_or_else(|| {
            panic!("mosquitto is not installed: run scripts/test (it installs it) or apt-get install mosquitto")
        })
}
