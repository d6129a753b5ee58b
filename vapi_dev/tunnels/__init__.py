"""Public tunnels behind one small async interface: choose(cfg) → ngrok, cloudflared, manual or none."""

from __future__ import annotations

from vapi_dev.tunnels import errors
from vapi_dev.tunnels.base import (
    PROVIDERS,
    Listener,
    Progress,
    Tunnel,
    TunnelConfig,
    TunnelError,
    TunnelInfo,
    kill_children,
    validate_public_url,
)
from vapi_dev.tunnels.locate import find_token
from vapi_dev.tunnels.manual import ManualTunnel
from vapi_dev.tunnels.none import NoTunnel
from vapi_dev.tunnels.selfcheck import PING_PREFIX, self_check

__all__ = [
    "PING_PREFIX",
    "PROVIDERS",
    "Listener",
    "ManualTunnel",
    "NoTunnel",
    "Progress",
    "Tunnel",
    "TunnelConfig",
    "TunnelError",
    "TunnelInfo",
    "choose",
    "kill_children",
    "self_check",
    "token_known",
]


def token_known(cfg: TunnelConfig) -> bool:
    """Whether ngrok could authenticate: --ngrok-authtoken, NGROK_AUTHTOKEN, or a token in ngrok.yml."""
    return find_token(cfg)[0] is not None


def choose(cfg: TunnelConfig, *, progress: Progress | None = None, local_fallback: bool = True) -> Tunnel:
    """The provider for ``cfg``. Raises TunnelError for contradictory or invalid settings.

    ``auto`` picks manual when a public URL is given, ngrok when a token is known, cloudflared when it
    is installed (never downloaded), else a NoTunnel whose ``notice`` says how to get a public URL. With
    ``local_fallback``, an installed cloudflared that ``auto`` picked and that fails to start leaves the run
    local only with a warning (pass False when Vapi resources wait for the URL). ``--tunnel cloudflared``
    downloads cloudflared when none is installed. ``progress`` receives download updates.
    """
    provider = (cfg.provider or "auto").strip().lower()
    if provider not in PROVIDERS:
        raise TunnelError(f"Unknown tunnel {cfg.provider!r}: use one of {', '.join(PROVIDERS)}.")
    if cfg.public_url and provider not in ("auto", "manual"):
        raise TunnelError(f"--public-url cannot be combined with --tunnel {provider}: drop one of them.")
    if provider == "manual" or (provider == "auto" and cfg.public_url):
        if not cfg.public_url:
            raise TunnelError("--tunnel manual needs --public-url URL (the address of your own tunnel).")
        return ManualTunnel(validate_public_url(cfg.public_url))
    if provider == "none":
        return NoTunnel()
    if provider == "cloudflared" or (provider == "auto" and not token_known(cfg)):
        from vapi_dev.tunnels.cloudflared import CloudflaredTunnel, cloudflared_installed

        if provider == "cloudflared":
            return CloudflaredTunnel(cfg, progress=progress, allow_download=True)
        if not cloudflared_installed(cfg):
            return NoTunnel(notice=errors.NO_TOKEN_NOTICE)
        picked = CloudflaredTunnel(cfg, progress=progress)
        if not local_fallback:
            return picked
        from vapi_dev.tunnels import cloudflared_errors
        from vapi_dev.tunnels.fallback import LocalFallback

        return LocalFallback(picked, cloudflared_errors.fallback)
    # Imported here so that pyngrok is only loaded when ngrok is actually used.
    from vapi_dev.tunnels.ngrok import NgrokTunnel

    return NgrokTunnel(cfg, progress=progress)
