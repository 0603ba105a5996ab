"""Where the agent's CPU goes per collection, measured in-process.

Runs the agent's runner, spool and shipper in this process (as ``hostpulse agent --server``
does, with 20 fixture containers and a textfile directory as in ``agent_overhead.py``; the
ingest sink runs in a child process) and ticks it on a simulated 5 s schedule without waiting:
collectors run on their own intervals (processes every 3rd tick, disk usage every 6th ...) and
each snapshot is shipped before the next tick. Prints the CPU per collection of all the
agent's threads (``time.process_time``, minus this script's own waiting), per thread, and the
context switches. Caches stay warm between ticks, so the figures are lower than those of a
real agent that sleeps 5 s between collections; use them to compare two versions.

* ``--breakdown``: each collector and each step of a snapshot (build, encode, gzip body, HTTP)
  called directly in one thread, CPU time of each; with ``--profile``, cProfile of that.
* ``--profile`` alone: yappi over all threads (``pip install yappi`` in the venv; it slows
  the agent down several times, so read the proportions, not the milliseconds).
* ``--skip processes,connections``: without collectors whose work depends on what else runs
  on the machine, for repeatable A/B counts.
* ``--exporter``: also render /metrics text at every tick.

CPU time is still disturbed by other load on the machine. A load-insensitive A/B: count
instructions with callgrind at two tick counts and divide the difference by the ticks between::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        .venv/bin/python bench/agent_profile.py --ticks 12 --skip processes,connections
    (then --ticks 72; instructions per collection = (I72 - I12) / 60)

    .venv/bin/python bench/agent_profile.py [--ticks 240] [--containers 20] [--no-textfile]
        [--exporter] [--skip NAMES] [--breakdown] [--profile] [--top 40]
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from hostpulse.agent.collectors import build_collectors
from hostpulse.agent.collectors.base import Reading
from hostpulse.agent.config import AgentSettings, ContainerSettings, CustomSettings
from hostpulse.agent.delivery.pipeline import start_delivery
from hostpulse.agent.delivery.settings import ShipperSettings, SpoolSettings
from hostpulse.agent.delivery.shipper import Shipper
from hostpulse.agent.runner import Runner
from hostpulse.agent.service import build_runner


def _overhead_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "agent_overhead", Path(__file__).with_name("agent_overhead.py")
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["agent_overhead"] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ticks", type=int, default=240, help="collections (a multiple of 12)")
    parser.add_argument("--containers", type=int, default=20)
    parser.add_argument("--no-textfile", dest="textfile", action="store_false")
    parser.add_argument("--exporter", action="store_true", help="render /metrics each tick too")
    parser.add_argument("--profile", action="store_true", help="yappi over all threads")
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument(
        "--skip",
        default="",
        help="comma-separated collectors left out (processes,connections: their work depends "
        "on what else runs on the machine, which makes A/B counts noisy)",
    )
    parser.add_argument(
        "--breakdown",
        action="store_true",
        help="call each collector and each step of a snapshot directly, CPU time of each",
    )
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        _serve_sink()
        return
    bench = _overhead_module()
    # the ingest sink runs in its own process, so that its CPU is not counted here
    sink = subprocess.Popen([sys.executable, __file__, "--sink"], stdout=subprocess.PIPE, text=True)
    assert sink.stdout is not None
    sink_url = sink.stdout.readline().strip()
    with tempfile.TemporaryDirectory(prefix="hostpulse-prof-") as tmp:
        extras = bench.make_extras(Path(tmp), args.containers, args.textfile)
        settings = AgentSettings(
            interval=5.0,
            containers=ContainerSettings(
                enabled=extras.cgroup_root is not None,
                cgroup_root=str(extras.cgroup_root or "/nonexistent"),
            ),
            custom=CustomSettings(
                textfile_dir=str(extras.textfile_dir) if extras.textfile_dir else None
            ),
            shipper=ShipperSettings(server=sink_url, api_key="bench"),
            spool=SpoolSettings(dir=str(Path(tmp) / "spool")),
        )
        delivery = start_delivery(settings.shipper, settings.spool)
        sinks: list = [delivery.shipper]
        render: Callable[[], None] | None = None
        if args.exporter:
            from hostpulse.agent.exporter import ExporterCache, TextRenderer

            cache = ExporterCache()
            sinks.append(cache)
            renderer = TextRenderer()

            def render() -> None:
                renderer.render(cache.latest)

        skip = set(filter(None, args.skip.split(",")))
        collectors = [
            c
            for c in build_collectors(containers=settings.containers, custom=settings.custom)
            if c.name not in skip
        ]
        runner = build_runner(
            settings, sinks, collectors=[*collectors, delivery.collector], budget=10.0
        )
        if args.breakdown:
            if args.profile:  # cProfile: every call of this one thread
                import cProfile
                import pstats

                prof = cProfile.Profile()
                prof.runcall(_breakdown, runner, settings, args.ticks, delivery.shipper)
                pstats.Stats(prof).sort_stats("tottime").print_stats(args.top)
                pstats.Stats(prof).sort_stats("cumulative").print_stats(args.top)
            else:
                _breakdown(runner, settings, args.ticks, delivery.shipper)
            delivery.close(5.0)
            sink.terminate()
            sink.wait(10)
            return
        gc.collect()
        gc.freeze()
        origin = time.monotonic()
        k = 0

        waiting = 0.0  # this thread's CPU while it waits for the shipper (not the agent's)
        sent = threading.Semaphore(0)
        observe = delivery.shipper.latency.observe

        def observed(seconds: float) -> None:  # a send was accepted
            observe(seconds)
            sent.release()

        delivery.shipper.latency.observe = observed  # type: ignore[method-assign]

        def tick() -> None:
            nonlocal k, waiting
            runner.tick(origin + k * 5.0)
            k += 1
            if render is not None:
                render()
            t0 = time.thread_time()
            if not sent.acquire(timeout=60):
                raise SystemExit("the shipper sent nothing within 60 s")
            waiting += time.thread_time() - t0

        for _ in range(24):  # warm up: rates, caches, two rounds of every collector
            tick()
        if args.profile:
            import yappi

            yappi.set_clock_type("cpu")
            yappi.start(builtins=True)
        before = _thread_cpu()
        switches = _switches()
        cpu0 = time.process_time()
        waiting = 0.0
        for _ in range(args.ticks):
            tick()
        cpu = time.process_time() - cpu0 - waiting
        threads = {n: c - before.get(n, 0.0) for n, c in _thread_cpu().items()}
        switches = _switches() - switches
        if args.profile:
            yappi.stop()
        runner.close()
        delivery.close(5.0)
        sink.terminate()
        sink.wait(10)
    print(
        f"{args.ticks} collections: {cpu / args.ticks * 1000:.2f} ms CPU per collection "
        f"(process, all threads; {args.containers} containers, textfile {args.textfile}, "
        f"exporter {args.exporter})"
    )
    threads["MainThread"] -= waiting
    print(f"  {switches / args.ticks:.1f} context switches per collection (all threads)")
    for name, seconds in sorted(threads.items(), key=lambda kv: -kv[1]):
        print(f"  thread {name:24} {seconds / args.ticks * 1000:6.2f} ms per collection")
    if args.profile:
        stats = yappi.get_func_stats()
        stats.sort("tsub")
        stats.print_all(
            columns={0: ("name", 90), 1: ("ncall", 10), 2: ("tsub", 8), 3: ("ttot", 8)},
            limit=args.top,  # type: ignore[call-arg]
        )
        stats.sort("ttot")
        stats.print_all(
            columns={0: ("name", 90), 1: ("ncall", 10), 2: ("tsub", 8), 3: ("ttot", 8)},
        )
        for t in yappi.get_thread_stats():
            print(f"thread {t.name:20} {t.ttot:.3f} s")


def _breakdown(runner: Runner, settings: AgentSettings, ticks: int, shipper: Shipper) -> None:
    """CPU seconds (this thread) of each collector per collection of the agent, and of building,
    encoding and sending each snapshot."""
    from hostpulse.agent.delivery.body import gzip_request_for
    from hostpulse.agent.delivery.record import RecordEncoder
    from hostpulse.agent.snapshot import BatchBuilder

    collectors = [w.collector for w in runner._workers]
    period = {c.name: settings.interval_of(c.name) for c in collectors}
    spent: dict[str, float] = {}
    readings: dict[str, Reading] = {}
    builder = BatchBuilder(runner.identity)
    encoder = RecordEncoder()
    clock = time.thread_time
    origin = time.monotonic()
    gc.collect()
    gc.freeze()
    for k in range(-24, ticks):
        now = origin + 5.0 * (k + 24)
        for c in collectors:
            if (k + 24) % round(period[c.name] / 5.0):
                continue
            t0 = clock()
            readings[c.name] = c.collect(now)
            if k >= 0:
                spent[c.name] = spent.get(c.name, 0.0) + clock() - t0
        t0 = clock()
        batch = builder.build(readings, timestamp_ms=int(time.time() * 1000), sequence=k + 25)
        t1 = clock()
        encoded = encoder.encode(batch)
        t2 = clock()
        body = gzip_request_for(encoded.payload, (encoded.request_crc32, encoded.size))
        t3 = clock()
        assert body is not None
        shipper.servers.post(body, shipper._headers, 10.0)
        t4 = clock()
        if k >= 0:
            for name, took in (
                ("(build batch)", t1 - t0),
                ("(encode record)", t2 - t1),
                ("(gzip body)", t3 - t2),
                ("(HTTP post)", t4 - t3),
            ):
                spent[name] = spent.get(name, 0.0) + took
    total = sum(spent.values())
    for name, took in sorted(spent.items(), key=lambda kv: -kv[1]):
        print(f"{name:20} {took / ticks * 1000:7.3f} ms per collection")
    print(f"{'total':20} {total / ticks * 1000:7.3f} ms per collection (one thread, no runner)")


def _thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process so far (utime + stime, 10 ms ticks)."""
    tick = os.sysconf("SC_CLK_TCK")
    names = {t.native_id: t.name for t in threading.enumerate()}
    out: dict[str, float] = {}
    for tid in os.listdir("/proc/self/task"):
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        name = names.get(int(tid), f"tid {tid}")
        out[name] = out.get(name, 0.0) + (int(fields[11]) + int(fields[12])) / tick
    return out


def _switches() -> int:
    """Context switches of all this process's threads so far (voluntary and not)."""
    total = 0
    for tid in os.listdir("/proc/self/task"):
        try:
            status = Path(f"/proc/self/task/{tid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.endswith("ctxt_switches:") or "ctxt_switches:" in line:
                total += int(line.split()[1])
    return total


def _serve_sink() -> None:
    bench = _overhead_module()
    sink = bench.Sink()
    print(sink.url, flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
