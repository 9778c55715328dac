"""End-to-end round trips of the numeric kernel family through the real server.

Each test checks a property of the answer against an independent numpy computation
(float64), plus the bad-input paths (INVALID_ARGUMENT / RESOURCE_EXHAUSTED).
"""
import unittest

import grpc
import numpy as np

import harness
from chamferdb.v1 import kernels_numeric_pb2 as knp
from chamferdb.v1 import kernels_pb2_grpc

T = harness.tensor
A = harness.array


class NumericKernelsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.srv = harness.Server()
        cls.srv.__enter__()
        cls.stub = kernels_pb2_grpc.KernelsStub(cls.srv.channel)

    @classmethod
    def tearDownClass(cls):
        cls.srv.__exit__(None, None, None)

    def assertCode(self, code, fn, *args):
        with self.assertRaises(grpc.RpcError) as cm:
            fn(*args)
        self.assertEqual(cm.exception.code(), code, cm.exception.details())
        return cm.exception.details()

    # ------------------------------------------------------------ Int8MixedLinear
    def test_int8_mixed_linear_within_analytic_bound(self):
        rng = np.random.default_rng(1)
        s, h, o = 24, 96, 40
        x = rng.standard_normal((s, h)).astype(np.float32)
        x[:, [5, 70]] *= 15.0
        w = (0.02 * rng.standard_normal((o, h))).astype(np.float32)
        b = (0.1 * rng.standard_normal(o)).astype(np.float32)
        resp = self.stub.Int8MixedLinear(knp.Int8MixedLinearRequest(
            x=T(x), w=T(w), bias=T(b), threshold=20.0, return_c=True, threads=2))
        y = A(resp.y)
        self.assertEqual(y.shape, (s, o))
        self.assertEqual(list(A(resp.outlier_cols)), [5, 70])
        self.assertAlmostEqual(resp.int8_fraction, 1 - 2 / h)
        # Independent float64 reference and the LLM.int8 bound.
        ref = x.astype(np.float64) @ w.astype(np.float64).T + b
        cw = np.abs(w).max(axis=1).astype(np.float64)
        np.testing.assert_array_equal(A(resp.cw), cw.astype(np.float32))
        keep = np.ones(h, bool)
        keep[[5, 70]] = False
        cx = np.abs(x[:, keep]).max(axis=1).astype(np.float64)
        np.testing.assert_array_equal(A(resp.cx), cx.astype(np.float32))
        wq = np.rint(127.0 * w.astype(np.float64) / cw[:, None])
        what = wq * cw[:, None] / 127.0
        bound = (cw[None, :] * np.abs(x[:, keep]).sum(1)[:, None]
                 + cx[:, None] * np.abs(what[:, keep]).sum(1)[None, :]) / 254.0
        self.assertTrue(np.all(np.abs(y - ref) <= bound + 1e-6 * (np.abs(ref) + 1e-3)))
        # The int32 C is exactly the integer product of the codes (numpy rint = half-even).
        xq = np.rint(127.0 * x.astype(np.float64) / cx[:, None])
        xq[:, ~keep] = 0
        np.testing.assert_array_equal(A(resp.c), (xq @ wq.T).astype(np.int64))

    def test_int8_mixed_linear_reference_method_and_prequantized_weights(self):
        rng = np.random.default_rng(2)
        x = rng.standard_normal((9, 33)).astype(np.float32)
        w = rng.standard_normal((7, 33)).astype(np.float32)
        fast = self.stub.Int8MixedLinear(knp.Int8MixedLinearRequest(x=T(x), w=T(w)))
        ref = self.stub.Int8MixedLinear(knp.Int8MixedLinearRequest(
            x=T(x), w=T(w), method=knp.NUMERIC_METHOD_REFERENCE))
        np.testing.assert_array_equal(A(fast.y), A(ref.y))
        self.assertEqual(ref.gemm_path, "naive")
        cw = np.abs(w).max(1)
        codes = np.rint(127.0 * w.astype(np.float64) / cw[:, None]).astype(np.int8)
        pre = self.stub.Int8MixedLinear(knp.Int8MixedLinearRequest(
            x=T(x), w_codes=T(codes), w_scales=T(cw),
            outlier_weight=knp.Int8MixedLinearRequest.OUTLIER_WEIGHT_DEQUANT))
        np.testing.assert_array_equal(A(pre.y), A(fast.y))  # no outliers at τ=6 here

    def test_int8_mixed_linear_bad_input(self):
        x = np.ones((4, 8), np.float32)
        w = np.ones((3, 8), np.float32)
        call = self.stub.Int8MixedLinear
        INV = grpc.StatusCode.INVALID_ARGUMENT
        self.assertIn("w", self.assertCode(INV, call, knp.Int8MixedLinearRequest(
            x=T(x), w=T(np.ones((3, 7), np.float32)))))
        self.assertIn("x", self.assertCode(INV, call, knp.Int8MixedLinearRequest(
            x=T(np.ones(8, np.float32)), w=T(w))))
        bad = x.copy()
        bad[1, 2] = np.nan
        self.assertIn("x", self.assertCode(INV, call, knp.Int8MixedLinearRequest(x=T(bad), w=T(w))))
        self.assertCode(INV, call, knp.Int8MixedLinearRequest(x=T(x)))
        self.assertCode(INV, call, knp.Int8MixedLinearRequest(x=T(x), w=T(w), threshold=-1))
        self.assertCode(INV, call, knp.Int8MixedLinearRequest(
            x=T(x), w_codes=T(np.ones((3, 8), np.int8)), w_scales=T(np.ones(3, np.float32))))
        self.assertIn("bias", self.assertCode(INV, call, knp.Int8MixedLinearRequest(
            x=T(x), w=T(w), bias=T(np.ones(4, np.float32)))))
        self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, call, knp.Int8MixedLinearRequest(
            x=T(np.ones((1, 70000), np.float32)), w=T(np.ones((1, 70000), np.float32))))

    # ------------------------------------------------------------ Int8MaxSim
    def _corpus(self, rng, docs, dim):
        lens = rng.integers(1, 12, docs)
        offsets = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        tok = rng.standard_normal((offsets[-1], dim))
        tok /= np.linalg.norm(tok, axis=1, keepdims=True)
        return offsets, tok.astype(np.float32)

    def test_int8_maxsim_scores_within_bounds_of_exact(self):
        rng = np.random.default_rng(3)
        offsets, tok = self._corpus(rng, 120, 48)
        q = rng.standard_normal((6, 48)).astype(np.float32)
        sims = q.astype(np.float64) @ tok.astype(np.float64).T
        exact = np.array([sims[:, a:b].max(axis=1).sum() for a, b in zip(offsets[:-1], offsets[1:])])
        for asym in (False, True):
            resp = self.stub.Int8MaxSim(knp.Int8MaxSimRequest(
                query=T(q), doc_offsets=T(offsets), doc_tokens=T(tok), k=10, asymmetric=asym))
            ids, sc, bd = A(resp.doc_ids), A(resp.scores), A(resp.bounds)
            self.assertEqual(len(ids), 10)
            self.assertTrue(np.all(np.abs(sc - exact[ids]) <= bd))
            self.assertTrue(np.all(np.diff(sc) <= 0))
            truth = set(np.argsort(-exact, kind="stable")[:10])
            self.assertGreaterEqual(len(truth & set(ids)), 8)

    def test_int8_maxsim_bad_input(self):
        rng = np.random.default_rng(4)
        offsets, tok = self._corpus(rng, 5, 8)
        q = np.ones((2, 8), np.float32)
        INV = grpc.StatusCode.INVALID_ARGUMENT
        call = self.stub.Int8MaxSim
        self.assertIn("doc_offsets", self.assertCode(INV, call, knp.Int8MaxSimRequest(
            query=T(q), doc_offsets=T(offsets[:-1]), doc_tokens=T(tok), k=1)))
        self.assertIn("k", self.assertCode(INV, call, knp.Int8MaxSimRequest(
            query=T(q), doc_offsets=T(offsets), doc_tokens=T(tok), k=0)))
        self.assertCode(INV, call, knp.Int8MaxSimRequest(
            query=T(np.ones((2, 7), np.float32)), doc_offsets=T(offsets), doc_tokens=T(tok), k=1))
        self.assertCode(INV, call, knp.Int8MaxSimRequest(
            query=T(q), doc_offsets=T(offsets.astype(np.int32)), doc_tokens=T(tok), k=1))


if __name__ == "__main__":
    unittest.main()
