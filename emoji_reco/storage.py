"""Files at a URI that is either a local path or s3://bucket/key (through `metaflow.S3`)."""
import os
import posixpath
import shutil
import tempfile
from pathlib import Path

from emoji_reco.errors import DataError

FLOW_FILES = "emoji_reco"


def is_s3(uri: str) -> bool:
    return str(uri).startswith("s3://")


def absolute(uri: str) -> str:
    """An s3:// URL as it is, a local path made absolute (a task may run in another folder)."""
    return uri if is_s3(uri) else os.path.abspath(os.path.expanduser(uri))


def bucket(uri: str) -> str:
    """The bucket of an s3:// URI."""
    return uri[len("s3://"):].split("/", 1)[0]


def join(uri: str, *parts: str) -> str:
    if is_s3(uri):
        return posixpath.join(uri.rstrip("/"), *parts)
    return os.path.join(uri, *parts)


def sibling(uri: str, name: str) -> str:
    """`name` in the same folder as `uri` (inside it, when `uri` is a local folder or ends with /)."""
    if is_s3(uri):
        return join(uri if uri.endswith("/") else posixpath.dirname(uri), name)
    return os.path.join(uri if os.path.isdir(uri) else os.path.dirname(os.path.abspath(uri)), name)


def datastore_root(flow) -> str:
    """The root of the datastore this task uses (local folder or s3:// URL)."""
    # Metaflow exposes it only on the task's datastore object.
    return flow._datastore._storage_impl.datastore_root


def run_root(flow) -> str:
    """Where this run keeps its own files: under the run's prefix in the datastore the run uses."""
    from metaflow import current

    return join(datastore_root(flow), current.flow_name, current.run_id, FLOW_FILES)


def _s3():
    from metaflow import S3

    return S3()


def read_bytes(uri: str) -> bytes:
    """A file's content (FileNotFoundError when it doesn't exist)."""
    if is_s3(uri):
        with _s3() as s3:
            obj = s3.get(uri, return_missing=True)
            if not obj.exists:
                raise FileNotFoundError(uri)
            return obj.blob
    return Path(uri).read_bytes()


def read_text(uri: str) -> str | None:
    """A small text file's content, or None when it doesn't exist."""
    try:
        return read_bytes(uri).decode("utf-8")
    except (FileNotFoundError, IsADirectoryError):
        return None


def data_files(uri: str, suffixes: tuple, exclude: tuple = ()) -> list[tuple[str, int]]:
    """The data file `uri` names, or every data file of a folder/prefix in name order: (URI, size), nothing
    read."""

    def wanted(name):
        base = name.rsplit("/", 1)[-1].lower()
        return base not in exclude and base.removesuffix(".gz").endswith(suffixes)

    if is_s3(uri):
        from metaflow.plugins.datatools.s3.s3 import MetaflowS3NotFound

        with _s3() as s3:
            obj = s3.info(uri, return_missing=True)
            try:
                objs = [obj] if obj.exists else [o for o in s3.list_recursive([uri.rstrip("/") + "/"])
                                                 if wanted(o.url)]
            except MetaflowS3NotFound:
                objs = []
            if not objs:
                raise DataError(f"Data not found at {uri}: no such object or prefix with data files. "
                                "Check the path and your AWS credentials.")
            return sorted((o.url, o.size) for o in objs)
    path = Path(uri).expanduser()
    if path.is_dir():
        return [(str(p), p.stat().st_size) for p in sorted(path.iterdir()) if p.is_file() and wanted(p.name)]
    if not path.is_file():
        raise DataError(f"Data file not found: {uri}. Pass --data with a CSV, JSON Lines or Parquet file "
                        "(local path or s3://...), or leave it out to use the demo data.")
    if not os.access(path, os.R_OK):
        raise DataError(f"Can't read {uri}: permission denied.")
    return [(str(path), path.stat().st_size)]


def open_binary(uri: str, size: int):
    """A data file to read as a seekable binary file; an S3 object in ranged reads as it is read, never
    whole."""
    if is_s3(uri):
        from emoji_reco.s3_files import open_object

        return open_object(uri, size)
    return open(uri, "rb")


def put_file(local: str, uri: str) -> None:
    """Copy a file to `uri`; a local copy appears whole or not at all."""
    if is_s3(uri):
        with _s3() as s3:
            s3.put_files([(uri, local)])
        return
    os.makedirs(os.path.dirname(uri), exist_ok=True)
    tmp = f"{uri}.partial"
    shutil.copyfile(local, tmp)
    os.replace(tmp, uri)


def put_bytes(data: bytes, uri: str) -> None:
    """Write a file at `uri`, whole or not at all."""
    if is_s3(uri):
        with _s3() as s3:
            s3.put(uri, data)
        return
    Path(uri).parent.mkdir(parents=True, exist_ok=True)
    Path(f"{uri}.partial").write_bytes(data)
    os.replace(f"{uri}.partial", uri)


def put_dir(local_dir: str, uri: str) -> None:
    """Copy a folder's tree to `uri`."""
    if is_s3(uri):
        files = [p for p in Path(local_dir).rglob("*") if p.is_file()]
        with _s3() as s3:
            s3.put_files([(join(uri, p.relative_to(local_dir).as_posix()), str(p)) for p in files])
        return
    # into `uri` as it is: it may be a mount (/opt/ml/model)
    shutil.copytree(local_dir, uri, dirs_exist_ok=True)


def safe_relative(url: str, prefix: str) -> str:
    """The part of an object's URL under `prefix`, as a relative path that stays inside the folder it is
    downloaded into; DataError for an absolute name, `..`, `.` or empty parts."""
    rel = url[len(prefix):]
    if not rel or any(part in ("", ".", "..") for part in rel.split("/")) or "\\" in rel:
        raise DataError(f"Refusing to download {url}: its name would leave the target folder "
                        "(absolute, '..' or empty parts). Remove or rename that object.")
    return rel


def get_dir(uri: str, local_dir: str) -> str:
    """A local folder holding the tree at `uri` (the folder itself when it is already local). An S3 tree is
    downloaded into a temporary folder beside `local_dir` and renamed into place, so `local_dir` appears whole
    or not at all; it must not exist yet, or be empty."""
    if not is_s3(uri):
        if not os.path.isdir(uri):
            raise FileNotFoundError(uri)
        return uri
    prefix = uri.rstrip("/") + "/"
    parent = os.path.dirname(os.path.abspath(local_dir))
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=f".{os.path.basename(local_dir)}.partial-", dir=parent)
    try:
        with _s3() as s3:
            objs = s3.get_recursive([prefix])
            if not objs:
                raise FileNotFoundError(uri)
            for o in objs:
                target = os.path.join(staging, safe_relative(o.url, prefix))
                os.makedirs(os.path.dirname(target), exist_ok=True)
                shutil.copyfile(o.path, target)
        os.replace(staging, local_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return local_dir


def get_files(uris: list[str], local_dir: str) -> list[str]:
    """Local paths for a list of file URIs (downloaded once when on S3)."""
    if not any(is_s3(u) for u in uris):
        return list(uris)
    os.makedirs(local_dir, exist_ok=True)
    out = []
    with _s3() as s3:
        for i, obj in enumerate(s3.get_many(uris)):
            target = os.path.join(local_dir, f"{i:05d}-{obj.url.rsplit('/', 1)[-1]}")
            shutil.copyfile(obj.path, target)
            out.append(target)
    return out
