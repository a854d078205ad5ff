# meterd: let `meterd ...` typed at a shell find the system configuration (and through it the
# daemon's control socket). Installed as /etc/profile.d/meterd.sh.
if [ -z "${METERD_CONFIG:-}" ] && [ -r /etc/meterd/meterd.toml ]; then
    export METERD_CONFIG=/etc/meterd/meterd.toml
fi
