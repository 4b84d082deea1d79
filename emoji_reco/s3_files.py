"""An S3 object as a seekable binary file, fetched in ranged GETs of `CHUNK` bytes as it is read (one block
held at a time), so a file larger than the disk or the memory can be read through; boto3's standard retries
cover a transient error on any one range."""
import io

CHUNK = 8 << 20  # bytes a GET fetches: few requests, bounded memory


class _Ranges(io.RawIOBase):
    """The object `s3://bucket/key` of `size` bytes, read a block of `CHUNK` bytes at a time, whatever size of
    read the caller asks for (a text reader asks for 8 KiB at a time)."""

    def __init__(self, client, bucket: str, key: str, size: int):
        self.client, self.bucket, self.key, self.size = client, bucket, key, size
        self.position, self.block_start, self.block = 0, 0, b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer) -> int:
        if self.position >= self.size:
            return 0
        if not self.block_start <= self.position < self.block_start + len(self.block):
            last = min(self.size, self.position + CHUNK) - 1
            self.block = self.client.get_object(Bucket=self.bucket, Key=self.key,
                                                Range=f"bytes={self.position}-{last}")["Body"].read()
            self.block_start = self.position
        at = self.position - self.block_start
        data = self.block[at:at + len(buffer)]
        buffer[:len(data)] = data
        self.position += len(data)
        return len(data)


def open_object(uri: str, size: int, client=None) -> io.BufferedReader:
    """`uri` (s3://bucket/key, `size` bytes) to read as a file."""
    import boto3

    bucket, key = uri[len("s3://"):].split("/", 1)
    return io.BufferedReader(_Ranges(client or boto3.client("s3"), bucket, key, size))
