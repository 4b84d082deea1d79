"""Where a server gets its model: a local endpoint (follows new deploys), or a fixed bundle given as a folder,
a model.tar.gz, or either on s3:// (awaited, in an image, until it is there)."""
import tarfile
import tempfile
from pathlib import Path

from emoji_reco import storage
from emoji_reco.errors import ModelError
from emoji_reco.model.bundle import SAVED_MODEL, read_metadata
from emoji_reco.serving.local_endpoint import LocalEndpoint


def find_bundle(root: Path) -> Path:
    """The bundle folder at or one level under `root`."""
    root = Path(root)
    for candidate in [root, *sorted(p for p in root.iterdir() if p.is_dir())]:
        if (candidate / SAVED_MODEL).is_dir():
            return candidate
    raise ModelError(f"No model bundle in {root}: expected a {SAVED_MODEL}/ folder beside labels.json.")


def make_tarball(folder: Path, tarball: Path) -> Path:
    """model.tar.gz with `folder`'s content at its root (as SageMaker unpacks it into /opt/ml/model)."""
    with tarfile.open(tarball, "w:gz") as out:
        for path in sorted(Path(folder).rglob("*")):
            out.add(path, arcname=path.relative_to(folder).as_posix(), recursive=False)
    return Path(tarball)


def extract(tarball: Path, dest: Path) -> Path:
    """Unpack a model archive safely (no absolute paths, no `..`, no links out, no devices) and find the
    bundle."""
    try:
        with tarfile.open(tarball) as archive:
            archive.extractall(dest, filter="data")
    except (tarfile.TarError, OSError) as exc:
        raise ModelError(f"Can't unpack {tarball}: {exc}") from exc
    return find_bundle(dest)


class EndpointSource:
    """The current version of a local endpoint; a new deploy is a new version."""

    follows = True

    def __init__(self, name: str):
        self.endpoint = LocalEndpoint(name)
        self.describe = f"endpoint {name} ({self.endpoint.root})"

    def version(self) -> str | None:
        return self.endpoint.current_version()

    def folder(self, version: str) -> Path:
        return self.endpoint.versions_dir / version


class FixedSource:
    """One bundle, fetched and unpacked once."""

    follows = False

    def __init__(self, uri: str):
        self.describe = uri
        self._tmp = tempfile.TemporaryDirectory(prefix="emoji-reco-serve-")
        tmp = Path(self._tmp.name)
        if uri.endswith((".tar.gz", ".tgz", ".tar")):
            local = Path(storage.get_files([uri],
                                           str(tmp / "archive"))[0]) if storage.is_s3(uri) else Path(uri)
            if not local.is_file():
                raise ModelError(f"Model archive {uri} not found.")
            self._folder = extract(local, tmp / "bundle")
        else:
            try:
                self._folder = find_bundle(Path(storage.get_dir(uri, str(tmp / "bundle"))))
            except FileNotFoundError as exc:
                raise ModelError(f"Model {uri} not found: give a bundle folder, a "
                                 f"model.tar.gz, or either on s3://.") from exc
            except PermissionError as exc:
                raise ModelError(f"Model {uri} can't be read by this user: {exc.strerror} "
                                 f"({exc.filename}).") from exc
        meta = read_metadata(self._folder) if (self._folder / "metadata.json").is_file() else {}
        # The training run names the version; a bundle made elsewhere is named after where it came from.
        self._version = str(meta.get("run") or uri.rstrip("/")).rsplit("/", 1)[-1]

    def version(self) -> str:
        return self._version

    def folder(self, version: str) -> Path:
        return self._folder


class AwaitedSource:
    """A fixed bundle that may not be there yet (a container started without its model): the server starts,
    /ping answers 503 saying what is missing, and the bundle is looked for again at every check until it is
    found."""

    follows = True

    def __init__(self, uri: str):
        self.describe, self._uri, self._found = uri, uri, None

    def version(self) -> str:
        if self._found is None:
            self._found = FixedSource(self._uri)  # ModelError while it is missing
        return self._found.version()

    def folder(self, version: str) -> Path:
        return self._found.folder(version)


def open_source(model: str | None, endpoint: str, wait: bool = False):
    """A local endpoint's source, else the bundle `model`: awaited with `wait`, else required now."""
    if not model:
        return EndpointSource(endpoint)
    return AwaitedSource(model) if wait else FixedSource(model)
