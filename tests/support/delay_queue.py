"""Hold every packet of an NFQUEUE for a fixed time, then let it through: netem's `delay` on a
kernel without netem. Run inside the namespace whose packets nftables queues:

    ip netns exec NS python delay_queue.py --queue 0 --ms 500

On SIGTERM it lets every held packet through before exiting.
"""

from __future__ import annotations

import argparse
import collections
import select
import signal
import time

from netfilterqueue import NetfilterQueue, Packet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queue", type=int, default=0)
    parser.add_argument("--ms", type=int, required=True)
    args = parser.parse_args()
    delay = args.ms / 1000
    held: collections.deque[tuple[float, Packet]] = collections.deque()
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    queue = NetfilterQueue()
    # The delay is constant, so packets leave in arrival order and a FIFO is enough.
    queue.bind(args.queue, lambda pkt: held.append((time.monotonic() + delay, pkt)), max_len=65536)
    fd = queue.get_fd()
    print("ready", flush=True)
    while not stopping:
        wait = max(0.0, held[0][0] - time.monotonic()) if held else 0.5
        try:
            readable, _, _ = select.select([fd], [], [], wait)
        except InterruptedError:
            continue
        if readable:
            queue.run(block=False)
        now = time.monotonic()
        while held and held[0][0] <= now:
            held.popleft()[1].accept()
    while held:
        held.popleft()[1].accept()
    queue.unbind()


if __name__ == "__main__":
    main()
