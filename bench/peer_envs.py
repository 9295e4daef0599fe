"""Virtual environments for the peer servers, one per peer under `.venv-peers/<peer>`.

    python -m bench.peer_envs [kserve mlserver bentoml]   # create or reuse, print versions

The peers' own dependencies never enter pyproject.toml: each gets its own venv, created once
and reused while its requirements are unchanged. onnxruntime is pinned to the project's own
version so every server runs the same kernels; a peer whose resolver refuses that pin falls
back to the newest onnxruntime it accepts, and the report shows which one it ran.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import venv
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENVS = ROOT / ".venv-peers"
STAMP = "aiaas-peer.json"
INSTALL_TIMEOUT_S = 1200


@dataclass(frozen=True)
class PeerRequirements:
    """What one peer's venv holds: its own package (pinned) and what our module for it imports."""

    package: str
    version: str
    extra: tuple[str, ...] = ()

    def requirements(self, onnxruntime: str | None) -> list[str]:
        ort = f"onnxruntime=={onnxruntime}" if onnxruntime else "onnxruntime"
        return [f"{self.package}=={self.version}", ort, "numpy", *self.extra]


PEERS = {
    "kserve": PeerRequirements("kserve", "0.21.0"),
    # uvloop 0.22 breaks MLServer 1.7.1's inference workers (SeldonIO/MLServer#2286).
    "mlserver": PeerRequirements("mlserver", "1.7.1", ("uvloop<0.22",)),
    "bentoml": PeerRequirements("bentoml", "1.4.39"),
}


@dataclass(frozen=True)
class PeerEnv:
    """A ready peer venv: its interpreter and the versions that matter for the report."""

    name: str
    python: Path
    versions: dict[str, str]


class PeerUnavailable(RuntimeError):
    """The peer's venv could not be built here; the message says why (for the skip line)."""


def _python(env: Path) -> Path:
    return env / "bin" / "python"


def _pip(env: Path, args: list[str], log: Path) -> bool:
    with log.open("a") as out:
        done = subprocess.run(
            [str(_python(env)), "-m", "pip", "install", "-q", "--disable-pip-version-check", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
    return done.returncode == 0


def _installed(env: Path, packages: tuple[str, ...]) -> dict[str, str]:
    code = (
        "import json, sys\nfrom importlib import metadata\n"
        "print(json.dumps({p: metadata.version(p) for p in sys.argv[1:]}))"
    )
    out = subprocess.run(
        [str(_python(env)), "-c", code, *packages], capture_output=True, text=True, check=True
    )
    return dict(json.loads(out.stdout))


def ensure(name: str) -> PeerEnv:
    """Create (or reuse) `.venv-peers/<name>`; raises PeerUnavailable with the reason."""
    peer = PEERS[name]
    env, ours = ENVS / name, metadata.version("onnxruntime")
    wanted = {"requirements": peer.requirements(ours), "python": sys.version.split()[0]}
    stamp = env / STAMP
    if stamp.exists():
        recorded = json.loads(stamp.read_text())
        if recorded.get("wanted") == wanted:
            return PeerEnv(name, _python(env), recorded["versions"])
    env.mkdir(parents=True, exist_ok=True)
    log = env / "install.log"
    print(
        f"  installing {name} into {env.relative_to(ROOT)} (once; log: {log.name}) ...", flush=True
    )
    venv.EnvBuilder(with_pip=True, clear=True).create(env)
    if not _pip(env, peer.requirements(ours), log) and not _pip(env, peer.requirements(None), log):
        tail = log.read_text().strip().splitlines()[-3:]
        raise PeerUnavailable(f"pip could not install {peer.package}: {' | '.join(tail)}")
    versions = _installed(env, (peer.package, "onnxruntime", "numpy"))
    stamp.write_text(json.dumps({"wanted": wanted, "versions": versions}, indent=2))
    return PeerEnv(name, _python(env), versions)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("peers", nargs="*", metavar="PEER", help=f"default: {' '.join(PEERS)}")
    args = parser.parse_args()
    for name in args.peers or list(PEERS):
        if name not in PEERS:
            parser.error(f"unknown peer {name!r}; known: {', '.join(PEERS)}")
        try:
            print(f"{name}: {ensure(name).versions}", flush=True)
        except (PeerUnavailable, subprocess.SubprocessError, OSError) as exc:
            print(f"{name}: skipped: {exc}", flush=True)


if __name__ == "__main__":
    main()
