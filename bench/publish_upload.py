"""The upload half of `aiaas publish` alone, against boto3's `upload_file`, on moto's S3 server.

    python -m bench.publish_upload [--size-mb 512] [--pairs 5] [--rate-mbps 90]

bench.large_model times the whole publish of a 1 GB model; its ratio to `upload_file` moves
with what moto spends on each upload (issue #16). This isolates the part the goal is about:
one random file of `--size-mb`, sent by the S3 store's staged multipart upload (the CRC32s of
its parts taken beforehand, as publish's signature read takes them) and by `upload_file`
(default TransferConfig), taking turns, through the per-connection throttling proxy (0: none).
Prints the wall time, this process's CPU (client and proxy) and moto's CPU of each, and the
ratio of the medians (upload_file / aiaas: above 1, aiaas is faster).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.args import count, rate_or_zero
from bench.throttle_proxy import ThrottleProxy

BUCKET = "aiaas-publish-upload-bench"


def cpu_of(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=count, default=512)
    parser.add_argument("--pairs", type=count, default=5)
    parser.add_argument("--rate-mbps", type=rate_or_zero, default=90.0, help="0: no proxy")
    args = parser.parse_args()

    import boto3

    from functions.runtime import file_digests
    from functions.runtime.s3store import S3Store
    from functions.runtime.settings import RuntimeSettings
    from tests.s3server import MotoServer

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "bench")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    transfer = RuntimeSettings.from_env().transfer
    with tempfile.TemporaryDirectory(prefix="aiaas-bench-upload-") as work:
        src = Path(work) / "model.bin"
        src.write_bytes(os.urandom(args.size_mb << 20))
        moto = MotoServer().start()
        proxy = ThrottleProxy(moto.port, args.rate_mbps * 1e6).start() if args.rate_mbps else None
        try:
            assert moto.process is not None
            client = boto3.client("s3", endpoint_url=proxy.endpoint if proxy else moto.endpoint)
            client.create_bucket(Bucket=BUCKET)
            store = S3Store(BUCKET, client=client, transfer=transfer)
            taken: dict[str, list[tuple[float, float, float]]] = {"aiaas": [], "upload_file": []}
            for pair in range(args.pairs):
                order = ["aiaas", "upload_file"] if pair % 2 else ["upload_file", "aiaas"]
                for side in order:
                    key = f"{side}/{pair}"
                    if side == "aiaas":
                        file_digests.digest_file(src, transfer.part_bytes)
                    began, cpu, moto_cpu = (
                        time.perf_counter(),
                        time.process_time(),
                        cpu_of(moto.process.pid),
                    )
                    if side == "aiaas":
                        store.stage_file(src, key, if_absent=True).commit()
                    else:
                        client.upload_file(str(src), BUCKET, key)
                    taken[side].append((
                        time.perf_counter() - began,
                        time.process_time() - cpu,
                        cpu_of(moto.process.pid) - moto_cpu,
                    ))  # fmt: skip
                    client.delete_object(Bucket=BUCKET, Key=key)
        finally:
            if proxy:
                proxy.stop()
            moto.stop()
    print(f"{args.size_mb} MB, {args.pairs} pairs, {args.rate_mbps:g} MB/s a connection "
          f"(aiaas: parts of {transfer.part_bytes >> 20} MB, {transfer.workers} at once)")  # fmt: skip
    for side, runs in taken.items():
        walls, cpus, motos = zip(*runs, strict=True)
        print(f"  {side:11s} wall {min(walls):.2f}-{max(walls):.2f} s (median "
              f"{statistics.median(walls):.2f}), client CPU {min(cpus):.2f}-{max(cpus):.2f} s, "
              f"moto CPU {min(motos):.2f}-{max(motos):.2f} s")  # fmt: skip
    ratio = statistics.median(w for w, _, _ in taken["upload_file"]) / statistics.median(
        w for w, _, _ in taken["aiaas"]
    )
    print(f"  aiaas vs upload_file speed (goal >= 1): {ratio:.2f}x")


if __name__ == "__main__":
    main()
