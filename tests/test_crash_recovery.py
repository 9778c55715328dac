"""kill -9 at a random moment of concurrent traffic (upserts with metadata, deletes,
searches, a JSON-records writer), restart, verify; the reduced CI form of the crash loop
(tests/reliability/crash_loop.py, which documents every check): 2 cycles without --sync
and 2 with it, on one data directory each. The full run (20+ cycles per mode) is
scripts/reliability.sh."""
import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reliability"))
import crash_loop  # noqa: E402


class CrashRecovery(unittest.TestCase):
    def run_mode(self, mode, seed):
        lines = []
        try:
            summary = crash_loop.run_mode(mode, cycles=2, seconds=3.0, writers_n=3, searchers_n=1, seed=seed,
                                          log=lines.append)
        except crash_loop.Failure as e:
            self.fail(f"{e}\n" + "\n".join(lines))
        self.assertEqual(summary["cycles"], 2)
        self.assertGreater(summary["acked_ops"], 10, "too little traffic was acknowledged before the kills")

    def test_kill9_without_sync(self):
        self.run_mode("nosync", 1)

    def test_kill9_with_sync(self):
        self.run_mode("sync", 2)


if __name__ == "__main__":
    unittest.main()
