"""Server images for the docker runner, built once and found again by the hash of what went in.

Two kinds (``[docker] image`` in matrix.toml):

- ``offline``: no registry at all. A Debian base made with ``debootstrap`` and ``docker import``
  (``images/offline/build-base.sh``), then ``images/offline/Dockerfile`` installs the release's
  ``nvidia-pytriton`` wheel and numpy from wheels downloaded on the host (``--no-index``). Same server
  version as the local runner gives for that release.
- ``release``: ``images/release/Dockerfile`` ``FROM`` the release's NGC image, for machines with a
  registry (GPU runners).

The tag holds a hash of the Dockerfile, the build arguments and the wheels, so a second run finds the
image and builds nothing.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from harness import PROJECT_ROOT
from harness.errors import HarnessError
from harness.matrix import Release

ROOT = PROJECT_ROOT
IMAGES = ROOT / "images"
OFFLINE_PYTHON = "3.11"  # Debian bookworm's python3
WHEELS = ROOT / ".nox" / "wheels"


def _hash(*parts: bytes) -> str:
    digest = hashlib.sha256()
    for part in parts:
        digest.update(hashlib.sha256(part).digest())
    return digest.hexdigest()[:16]


def _exists(client: Any, tag: str) -> bool:
    import docker.errors

    try:
        client.images.get(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def base_image(client: Any) -> str:
    """The debootstrap base, tagged by the hash of the script that makes it."""
    script = IMAGES / "offline" / "build-base.sh"
    tag = f"triton-matrix/base:{_hash(script.read_bytes())}"
    if _exists(client, tag):
        return tag
    done = subprocess.run(["bash", str(script), tag], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise HarnessError(f"building the offline base image failed: {last}", where=str(script),
                           fix="run it as root with debootstrap installed and dockerd running")
    return tag


def _pip() -> list[str]:
    """A pip to download with: this Python's, else its base interpreter's (uv venvs have none)."""
    try:
        import pip  # noqa: F401

        return [sys.executable, "-m", "pip"]
    except ImportError:
        return [str(Path(sys.base_prefix) / "bin" / "python3"), "-m", "pip"]


def download_wheels(release: Release, python: str = OFFLINE_PYTHON) -> Path:
    """The wheels of the offline image for ``release`` (cached in .nox/wheels/<release>/)."""
    dest = WHEELS / f"{release.name}-py{python}"
    if dest.is_dir() and list(dest.glob("nvidia_pytriton-*.whl")) and list(dest.glob("numpy-*.whl")):
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    platforms = [f"--platform=manylinux_2_{n}_x86_64" for n in (17, 28, 31, 34, 35)] + [
        "--platform=manylinux2014_x86_64"]
    cmd = [*_pip(), "download", "--quiet", "--disable-pip-version-check", "--no-deps", "--only-binary=:all:",
           f"--python-version={python}", "--implementation=cp", *platforms, "-d", str(dest),
           f"nvidia-pytriton=={release.pytriton}", "numpy<2"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        shutil.rmtree(dest, ignore_errors=True)
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise HarnessError(f"downloading the wheels for the offline image failed: {last}",
                           where=f'releases."{release.name}".pytriton', fix="check the version and the package index")
    return dest


def _build(client: Any, context: Path, tag: str, buildargs: dict[str, str]) -> None:
    import docker.errors

    try:
        client.images.build(path=str(context), tag=tag, buildargs=buildargs, rm=True, forcerm=True, pull=False)
    except docker.errors.BuildError as exc:
        lines = [str(chunk.get("stream") or chunk.get("error") or "").strip() for chunk in exc.build_log]
        last = [ln for ln in lines if ln][-1:] or [str(exc)]
        raise HarnessError(f"building image {tag} failed: {last[0]}", where=str(context / "Dockerfile"),
                           fix="see the build output with 'docker build' in that folder") from None
    except docker.errors.APIError as exc:
        raise HarnessError(f"building image {tag} failed: {exc.explanation or exc}",
                           where=str(context / "Dockerfile"), fix="check that the base image can be had") from None


def server_image(client: Any, release: Release, kind: str) -> tuple[str, str]:
    """(tag, Python of the image) for ``release``; built only when no image has that tag yet."""
    if kind == "release":
        if not release.image or not release.image_python:
            raise HarnessError("needs image and image_python for the release image",
                               where=f'releases."{release.name}"', fix='add image = "nvcr.io/..." and image_python')
        dockerfile = (IMAGES / "release" / "Dockerfile").read_bytes()
        args = {"BASE": release.image, "PYTHON": release.image_python}
        tag = f"triton-matrix/release-{release.name}:{_hash(dockerfile, repr(sorted(args.items())).encode())}"
        if not _exists(client, tag):
            _build(client, IMAGES / "release", tag, args)
        return tag, release.image_python
    base = base_image(client)
    wheels = download_wheels(release)
    dockerfile = (IMAGES / "offline" / "Dockerfile").read_bytes()
    args = {"BASE": base, "PYTHON": OFFLINE_PYTHON}
    wheel_names = sorted(p.name for p in wheels.glob("*.whl"))
    tag = f"triton-matrix/offline-{release.name}:" + _hash(
        dockerfile, repr(sorted(args.items())).encode(), "\n".join(wheel_names).encode())
    if _exists(client, tag):
        return tag, OFFLINE_PYTHON
    with tempfile.TemporaryDirectory(prefix="triton-matrix-image-") as tmp:
        context = Path(tmp)
        shutil.copy(IMAGES / "offline" / "Dockerfile", context / "Dockerfile")
        (context / "wheels").mkdir()
        for name in wheel_names:
            shutil.copy(wheels / name, context / "wheels" / name)
        _build(client, context, tag, args)
    return tag, OFFLINE_PYTHON
