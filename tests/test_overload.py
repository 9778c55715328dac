"""Overload: with --max-concurrent-requests N, a flood of many more concurrent slow requests
than N gets fast RESOURCE_EXHAUSTED errors (naming the limit) for the excess instead of an
unbounded queue: some requests succeed, the refused ones return quickly (well before the
slow ones finish), nothing times out, metadata reads stay open during the flood, every
slot is released afterwards and the server is healthy. Also: a request whose deadline
passes while it waits behind the flood is reported as DEADLINE_EXCEEDED, never hangs."""
import concurrent.futures
import time
import unittest

import grpc

import harness
from chamferdb.v1 import collections_pb2, collections_pb2_grpc
from chamferdb.v1 import kernels_numeric_pb2 as kn
from chamferdb.v1 import kernels_pb2_grpc

LIMIT = 3
FLOOD = 24


def slow_request(steps):
    # The official EBV SGD with an unreachable tau runs exactly `steps` steps: a CPU-bound
    # request of predictable length.
    return kn.EbvGenerateRequest(n=200, d=50, tau=1e-9, optimizer=kn.EbvGenerateRequest.OFFICIAL_SGD,
                                 max_steps=steps, seed=1)


class Overload(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server(extra_args=["--max-concurrent-requests", str(LIMIT)]).start()
        cls.stub = kernels_pb2_grpc.KernelsStub(cls.srv.channel)
        # Calibrate: steps so that one slow request takes ~0.4 s here (machine load varies).
        t0 = time.monotonic()
        cls.stub.EbvGenerate(slow_request(20), timeout=120)
        per_step = max((time.monotonic() - t0) / 20, 1e-4)
        cls.steps = int(min(max(0.4 / per_step, 20), 20000))

    @classmethod
    def tearDownClass(cls):
        cls.srv.stop()
        cls.srv.cleanup()

    def call(self, stub, timeout=120):
        t0 = time.monotonic()
        try:
            stub.EbvGenerate(slow_request(self.steps), timeout=timeout)
            return "OK", time.monotonic() - t0, ""
        except grpc.RpcError as e:
            return e.code().name, time.monotonic() - t0, e.details()

    def test_flood_fails_fast_beyond_the_limit(self):
        channels = [self.srv.new_channel() for _ in range(FLOOD)]
        stubs = [kernels_pb2_grpc.KernelsStub(c) for c in channels]
        with concurrent.futures.ThreadPoolExecutor(FLOOD) as pool:
            futures = [pool.submit(self.call, s) for s in stubs]
            # Metadata reads are exempt from admission: they answer during the flood.
            time.sleep(0.1)
            listed = collections_pb2_grpc.CollectionsStub(self.srv.channel).List(
                collections_pb2.ListCollectionsRequest(), timeout=10)
            self.assertIsNotNone(listed)
            results = [f.result() for f in futures]
        for c in channels:
            c.close()
        codes = [r[0] for r in results]
        ok = [r for r in results if r[0] == "OK"]
        refused = [r for r in results if r[0] == "RESOURCE_EXHAUSTED"]
        self.assertEqual(len(ok) + len(refused), FLOOD, f"unexpected codes: {codes}")
        self.assertGreaterEqual(len(ok), 1, codes)
        self.assertGreaterEqual(len(refused), FLOOD - 4 * LIMIT, f"too few refused: {codes}")
        for _, _, msg in refused:
            self.assertIn("--max-concurrent-requests", msg)
            self.assertIn(f"limit is {LIMIT}", msg)
        # Refusals are fast: far below the time of one slow request.
        slowest_refusal = max(r[1] for r in refused)
        fastest_ok = min(r[1] for r in ok)
        print(f"\noverload: {FLOOD} concurrent slow requests, limit {LIMIT}: {len(ok)} OK "
              f"({fastest_ok:.2f}-{max(r[1] for r in ok):.2f}s), {len(refused)} RESOURCE_EXHAUSTED "
              f"(slowest refusal {slowest_refusal * 1000:.0f} ms)")
        self.assertLess(slowest_refusal, 2.0, f"a refusal took {slowest_refusal:.2f}s")
        self.assertLess(slowest_refusal, fastest_ok, f"refusal {slowest_refusal:.2f}s vs success {fastest_ok:.2f}s")
        # Afterwards: healthy, every slot released (LIMIT concurrent requests all admitted).
        health = self.srv.channel.unary_unary("/grpc.health.v1.Health/Check")
        self.assertEqual(health(b"", timeout=10), b"\x08\x01")  # status: SERVING
        with concurrent.futures.ThreadPoolExecutor(LIMIT) as pool:
            again = list(pool.map(lambda _: self.call(self.stub), range(LIMIT)))
        self.assertEqual([r[0] for r in again], ["OK"] * LIMIT, again)

    def test_deadline_while_busy(self):
        # Saturate the slots, then send a request with a short deadline: it is either refused
        # at once (RESOURCE_EXHAUSTED) or runs out of time (DEADLINE_EXCEEDED), within about
        # its deadline; never a hang.
        with concurrent.futures.ThreadPoolExecutor(LIMIT + 1) as pool:
            hold = [pool.submit(self.call, self.stub) for _ in range(LIMIT)]
            time.sleep(0.1)
            code, seconds, _ = self.call(self.stub, timeout=0.3)
            for f in hold:
                f.result()
        self.assertIn(code, ("RESOURCE_EXHAUSTED", "DEADLINE_EXCEEDED"))
        self.assertLess(seconds, 2.0)


if __name__ == "__main__":
    unittest.main()
