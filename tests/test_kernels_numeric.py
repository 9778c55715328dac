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

    # ------------------------------------------------------------ SpectralConv2d
    @staticmethod
    def _numpy_spectral_conv(x, wp, wn, bias, out_hw, norm):
        """neuraloperator's SpectralConv written with numpy's FFT (independent of FFTW)."""
        b, ci, h, w = x.shape
        co, m1, m2 = wp.shape[1], wp.shape[2], wp.shape[3]
        ho, wo = out_hw
        xf = np.fft.rfft2(x, norm=norm)
        out = np.zeros((b, co, ho, wo // 2 + 1), complex)
        out[:, :, :m1, :m2] = np.einsum("bixy,ioxy->boxy", xf[:, :, :m1, :m2], wp)
        out[:, :, ho - m1:, :m2] = np.einsum("bixy,ioxy->boxy", xf[:, :, h - m1:, :m2], wn)
        return np.fft.irfft2(out, s=(ho, wo), norm=norm) + bias[None, :, None, None]

    def test_spectral_conv2d_matches_numpy_fft_pipeline(self):
        rng = np.random.default_rng(5)
        b, ci, co, h, w, m1, m2 = 2, 3, 4, 12, 9, 3, 4
        x = rng.standard_normal((b, ci, h, w))
        wp = rng.standard_normal((ci, co, m1, m2)) + 1j * rng.standard_normal((ci, co, m1, m2))
        wn = rng.standard_normal((ci, co, m1, m2)) + 1j * rng.standard_normal((ci, co, m1, m2))
        bias = rng.standard_normal(co)
        for norm, enum in (("forward", knp.FFT_NORM_FORWARD), ("backward", knp.FFT_NORM_BACKWARD),
                           ("ortho", knp.FFT_NORM_ORTHO)):
            for (ho, wo) in ((h, w), (20, 16)):
                for method in (knp.NUMERIC_METHOD_FAST, knp.NUMERIC_METHOD_REFERENCE):
                    resp = self.stub.SpectralConv2d(knp.SpectralConv2dRequest(
                        x=T(x), weights_pos=T(wp), weights_neg=T(wn), bias=T(bias),
                        out_height=ho, out_width=wo, norm=enum, method=method, threads=2))
                    y = A(resp.y)
                    ref = self._numpy_spectral_conv(x, wp, wn, bias, (ho, wo), norm)
                    self.assertEqual(y.shape, (b, co, ho, wo))
                    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-11 * np.abs(ref).max())

    def test_spectral_conv2d_super_resolution_is_exact_for_band_limited_input(self):
        rng = np.random.default_rng(6)
        wp = rng.standard_normal((1, 1, 4, 4)) + 1j * rng.standard_normal((1, 1, 4, 4))
        wn = rng.standard_normal((1, 1, 4, 4)) + 1j * rng.standard_normal((1, 1, 4, 4))

        def grid(n):
            u, v = np.meshgrid(np.arange(n) / n, np.arange(n) / n, indexing="ij")
            return (np.cos(2 * np.pi * (2 * u - v)) + np.sin(2 * np.pi * 3 * v))[None, None]

        up = A(self.stub.SpectralConv2d(knp.SpectralConv2dRequest(
            x=T(grid(16)), weights_pos=T(wp), weights_neg=T(wn), out_height=64, out_width=64)).y)
        native = A(self.stub.SpectralConv2d(knp.SpectralConv2dRequest(
            x=T(grid(64)), weights_pos=T(wp), weights_neg=T(wn))).y)
        np.testing.assert_allclose(up, native, atol=1e-12)

    def test_spectral_conv2d_bad_input(self):
        x = np.zeros((1, 2, 8, 8))
        wp = np.zeros((2, 3, 5, 2), complex)  # m1 = 5 > H/2
        INV = grpc.StatusCode.INVALID_ARGUMENT
        call = self.stub.SpectralConv2d
        self.assertIn("modes1", self.assertCode(INV, call, knp.SpectralConv2dRequest(
            x=T(x), weights_pos=T(wp), weights_neg=T(wp))))
        ok = np.zeros((2, 3, 2, 2), complex)
        self.assertIn("weights_pos", self.assertCode(INV, call, knp.SpectralConv2dRequest(
            x=T(x), weights_pos=T(np.zeros((3, 3, 2, 2), complex)), weights_neg=T(ok))))
        self.assertIn("weights_pos", self.assertCode(INV, call, knp.SpectralConv2dRequest(
            x=T(x), weights_pos=T(ok.real.copy()), weights_neg=T(ok))))
        self.assertIn("x", self.assertCode(INV, call, knp.SpectralConv2dRequest(
            x=T(np.zeros((2, 8, 8))), weights_pos=T(ok), weights_neg=T(ok))))
        self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, call, knp.SpectralConv2dRequest(
            x=T(x), weights_pos=T(ok), weights_neg=T(ok), out_height=20000, out_width=20000))

    # ------------------------------------------------------------ FourierResample
    def test_fourier_resample_band_limited_exact(self):
        def grid(n, m):
            u, v = np.meshgrid(np.arange(n) / n, np.arange(m) / m, indexing="ij")
            return np.cos(2 * np.pi * (3 * u + 2 * v)) + 0.3 * np.sin(2 * np.pi * (u - 4 * v))

        x = np.stack([grid(16, 12), 2 * grid(16, 12)])
        y = A(self.stub.FourierResample(knp.FourierResampleRequest(
            x=T(x), out_height=40, out_width=27)).y)
        np.testing.assert_allclose(y, np.stack([grid(40, 27), 2 * grid(40, 27)]), atol=1e-12)
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.stub.FourierResample,
                        knp.FourierResampleRequest(x=T(x), out_height=0, out_width=4))

    # ------------------------------------------------------------ QuadratureIntegralOperator
    def test_quadrature_integral_converges_to_analytic_integral(self):
        l, s, L = 0.7, 1.3, 12.0
        x = np.array([[-1.5], [0.0], [2.0]])
        exact = (np.sqrt(2 * np.pi) * l * s / np.sqrt(l * l + s * s)
                 * np.exp(-x[:, 0] ** 2 / (2 * (l * l + s * s))))

        def run(n, weighted):
            y = np.linspace(-L, L, n)[:, None]
            h = y[1, 0] - y[0, 0]
            w = np.full(n, h)
            w[[0, -1]] = h / 2
            v = np.exp(-y ** 2 / (2 * s * s))
            req = knp.QuadratureIntegralRequest(x=T(x), y=T(y), v=T(v), length_scale=l)
            if weighted:
                req.weights.CopyFrom(T(w))
            return A(self.stub.QuadratureIntegralOperator(req).out)[:, 0]

        self.assertLess(np.abs(run(200, True) - exact).max(), 1e-12)
        self.assertLess(np.abs(run(40, True) - exact).max(), np.abs(run(20, True) - exact).max())
        # Without weights the plain sum scales with N (the failure mode the paper warns about).
        np.testing.assert_allclose(run(401, False) / run(201, False), 2.0, rtol=0.01)
        self.assertIn("length_scale", self.assertCode(
            grpc.StatusCode.INVALID_ARGUMENT, self.stub.QuadratureIntegralOperator,
            knp.QuadratureIntegralRequest(x=T(x), y=T(x), v=T(x))))
        self.assertIn("v", self.assertCode(
            grpc.StatusCode.INVALID_ARGUMENT, self.stub.QuadratureIntegralOperator,
            knp.QuadratureIntegralRequest(x=T(x), y=T(x), v=T(np.ones((2, 1))), length_scale=1.0)))

    # ------------------------------------------------------------ KernelInterpConv2d
    def test_kernel_interp_conv2d_matches_numpy_and_converges_across_resolutions(self):
        rng = np.random.default_rng(11)
        k = np.zeros((2, 1, 5, 5))
        k[:, :, 1:4, 1:4] = rng.standard_normal((2, 1, 3, 3))  # vanishes on the border ring

        def grid(n):
            u, v = np.meshgrid(2 * np.pi * np.arange(n) / n, 2 * np.pi * np.arange(n) / n, indexing="ij")
            return (np.sin(u) * np.cos(2 * v) + 0.5 * np.cos(u + v))[None, None]

        def numpy_conv(x, kern):
            kt = kern.shape[-1]
            p = (kt - 1) // 2
            out = np.zeros((1, kern.shape[0]) + x.shape[2:])
            for a in range(kt):
                for e in range(kt):
                    shifted = np.roll(x[0, 0], (p - a, p - e), axis=(0, 1))
                    out[0] += kern[:, 0, a, e][:, None, None] * shifted
            return out

        coarse = A(self.stub.KernelInterpConv2d(knp.KernelInterpConv2dRequest(x=T(grid(16)), kernel=T(k))).y)
        np.testing.assert_allclose(coarse, numpy_conv(grid(16), k), atol=1e-12)
        gaps = []
        for n in (16, 32):
            fine = self.stub.KernelInterpConv2d(knp.KernelInterpConv2dRequest(x=T(grid(2 * n)), kernel=T(k), scale=2))
            self.assertEqual(A(fine.interpolated_kernel).shape, (2, 1, 9, 9))
            c = A(self.stub.KernelInterpConv2d(knp.KernelInterpConv2dRequest(x=T(grid(n)), kernel=T(k))).y)
            gaps.append(np.abs(A(fine.y)[:, :, ::2, ::2] - c).max())
        self.assertLess(gaps[1], gaps[0] / 3)
        self.assertIn("odd", self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.stub.KernelInterpConv2d,
                                             knp.KernelInterpConv2dRequest(x=T(grid(8)), kernel=T(np.ones((1, 1, 2, 2))))))

    # ------------------------------------------------------------ SpGemm
    @staticmethod
    def _csr(dense):
        row_ptr, cols, vals = [0], [], []
        for row in dense:
            nz = np.nonzero(row)[0]
            cols.extend(nz)
            vals.extend(row[nz])
            row_ptr.append(len(cols))
        return (np.array(row_ptr, np.int64), np.array(cols, np.int32), np.array(vals, np.float64))

    def _spgemm(self, a, b, **kw):
        ar, ac, av = self._csr(a)
        br, bc, bv = self._csr(b)
        return self.stub.SpGemm(knp.SpGemmRequest(
            a_row_ptr=T(ar), a_col=T(ac), a_val=T(av), a_cols=a.shape[1],
            b_row_ptr=T(br), b_col=T(bc), b_val=T(bv), b_cols=b.shape[1], **kw))

    def test_spgemm_matches_dense_product_for_every_method(self):
        rng = np.random.default_rng(7)
        a = rng.standard_normal((23, 31)) * (rng.random((23, 31)) < 0.15)
        b = rng.standard_normal((31, 17)) * (rng.random((31, 17)) < 0.2)
        a[4] = 0  # an empty row
        pattern = (a != 0).astype(int) @ (b != 0).astype(int) > 0
        for method in (knp.SpGemmRequest.ROW_HASH, knp.SpGemmRequest.SMASH_ATOMIC,
                       knp.SpGemmRequest.DENSE_SPA, knp.SpGemmRequest.REFERENCE):
            r = self._spgemm(a, b, method=method, threads=2)
            row_ptr, col, val = A(r.row_ptr), A(r.col), A(r.val)
            dense = np.zeros((23, 17))
            got = np.zeros((23, 17), bool)
            for i in range(23):
                cols = col[row_ptr[i]:row_ptr[i + 1]]
                self.assertTrue(np.all(np.diff(cols) > 0))
                dense[i, cols] = val[row_ptr[i]:row_ptr[i + 1]]
                got[i, cols] = True
            np.testing.assert_array_equal(got, pattern)
            np.testing.assert_allclose(dense, a @ b, rtol=1e-13, atol=1e-13)
            self.assertEqual(r.nnz, pattern.sum())
            self.assertEqual(r.flops, int(((a != 0).sum(0) * (b != 0).sum(1)).sum()))

    def test_spgemm_bad_input(self):
        INV = grpc.StatusCode.INVALID_ARGUMENT
        ok = dict(a_row_ptr=T(np.array([0, 2], np.int64)), a_col=T(np.array([0, 1], np.int32)),
                  a_val=T(np.ones(2)), a_cols=2,
                  b_row_ptr=T(np.array([0, 1, 2], np.int64)), b_col=T(np.array([0, 0], np.int32)),
                  b_val=T(np.ones(2)), b_cols=1)
        self.assertEqual(A(self.stub.SpGemm(knp.SpGemmRequest(**ok)).val).tolist(), [2.0])
        bad = dict(ok, a_col=T(np.array([1, 0], np.int32)))
        self.assertIn("unsorted", self.assertCode(INV, self.stub.SpGemm, knp.SpGemmRequest(**bad)))
        bad = dict(ok, a_cols=3)
        self.assertIn("a_cols", self.assertCode(INV, self.stub.SpGemm, knp.SpGemmRequest(**bad)))
        bad = dict(ok, b_col=T(np.array([0, 5], np.int32)))
        self.assertIn("b", self.assertCode(INV, self.stub.SpGemm, knp.SpGemmRequest(**bad)))
        bad = dict(ok, a_row_ptr=T(np.array([0, 3], np.int64)))
        self.assertIn("a_row_ptr", self.assertCode(INV, self.stub.SpGemm, knp.SpGemmRequest(**bad)))
        # Output cap: 8192 rows each hitting one B row of 131072 entries: nnz(C) up to 2^30.
        n = 1 << 13
        col_a = np.zeros(n, np.int32)
        req = knp.SpGemmRequest(
            a_row_ptr=T(np.arange(n + 1, dtype=np.int64)), a_col=T(col_a), a_val=T(np.ones(n)), a_cols=1,
            b_row_ptr=T(np.array([0, n * 16], np.int64)), b_col=T(np.arange(n * 16, dtype=np.int32)),
            b_val=T(np.ones(n * 16)), b_cols=n * 16)
        self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.SpGemm, req)

    # ------------------------------------------------------------ EvoNorm
    def test_evonorm_b0_and_s0_match_direct_numpy_formulas(self):
        rng = np.random.default_rng(8)
        n, c, h, w = 3, 8, 5, 6
        x = (2 * rng.standard_normal((n, c, h, w)) + 0.3).astype(np.float32)
        g = (1 + 0.2 * rng.standard_normal(c)).astype(np.float32)
        b = (0.1 * rng.standard_normal(c)).astype(np.float32)
        v = (1 + 0.3 * rng.standard_normal(c)).astype(np.float32)
        rv = (0.5 + rng.random(c)).astype(np.float32)
        xd = x.astype(np.float64)
        sh = (1, c, 1, 1)
        # B0, timm convention, TRAIN.
        r = self.stub.EvoNorm(knp.EvoNormRequest(
            x=T(x), variant=knp.EvoNormRequest.B0, convention=knp.EvoNormRequest.TIMM,
            gamma=T(g), beta=T(b), v=T(v), running_var=T(rv), threads=2))
        self.assertEqual(r.eps, 1e-3)
        var_b = xd.var(axis=(0, 2, 3))
        left = np.sqrt(var_b + 1e-3).reshape(sh)
        right = xd * v.reshape(sh) + np.sqrt(xd.var(axis=(2, 3), keepdims=True) + 1e-3)
        ref = xd / np.maximum(left, right) * g.reshape(sh) + b.reshape(sh)
        np.testing.assert_allclose(A(r.y), ref, rtol=1e-5, atol=1e-6)
        cnt = n * h * w
        np.testing.assert_allclose(A(r.running_var), 0.9 * rv + 0.1 * var_b * cnt / (cnt - 1), rtol=1e-6)
        # S0, TF convention, 4 groups.
        r = self.stub.EvoNorm(knp.EvoNormRequest(
            x=T(x), variant=knp.EvoNormRequest.S0, gamma=T(g), beta=T(b), v=T(v), groups=4))
        gv = xd.reshape(n, 4, c // 4, h, w).var(axis=(2, 3, 4), keepdims=True)
        gstd = np.broadcast_to(np.sqrt(gv + 1e-5), (n, 4, c // 4, h, w)).reshape(n, c, h, w)
        ref = xd / (1 + np.exp(-v.reshape(sh) * xd)) / gstd * g.reshape(sh) + b.reshape(sh)
        np.testing.assert_allclose(A(r.y), ref, rtol=1e-5, atol=1e-6)
        self.assertEqual(r.groups, 4)

    def test_evonorm_bad_input(self):
        x = np.ones((2, 6, 3, 3), np.float32)
        cvec = T(np.ones(6, np.float32))
        INV = grpc.StatusCode.INVALID_ARGUMENT
        self.assertIn("running_var", self.assertCode(INV, self.stub.EvoNorm, knp.EvoNormRequest(
            x=T(x), gamma=cvec, beta=cvec, v=cvec)))
        self.assertIn("gamma", self.assertCode(INV, self.stub.EvoNorm, knp.EvoNormRequest(
            x=T(x), gamma=T(np.ones(5, np.float32)), beta=cvec, v=cvec, running_var=cvec)))
        self.assertIn("groups", self.assertCode(INV, self.stub.EvoNorm, knp.EvoNormRequest(
            x=T(x), variant=knp.EvoNormRequest.S0, convention=knp.EvoNormRequest.TIMM, groups=4,
            gamma=cvec, beta=cvec, v=cvec)))
        self.assertIn("eps", self.assertCode(INV, self.stub.EvoNorm, knp.EvoNormRequest(
            x=T(x), gamma=cvec, beta=cvec, v=cvec, running_var=cvec, eps=-1.0)))

    # ------------------------------------------------------------ EBV
    def test_ebv_generate_qr_and_sgd_report_true_statistics(self):
        r = self.stub.EbvGenerate(knp.EbvGenerateRequest(n=40, d=48))
        e = A(r.e)
        self.assertTrue(r.used_qr and r.converged)
        g = e @ e.T
        np.testing.assert_allclose(np.diag(g), 1.0, atol=1e-12)
        self.assertLess(np.abs(g - np.eye(40)).max(), 1e-12)
        r = self.stub.EbvGenerate(knp.EbvGenerateRequest(
            n=120, d=30, tau=0.25, optimizer=knp.EbvGenerateRequest.OFFICIAL_SGD, max_steps=3000))
        e = A(r.e)
        g = np.abs(e @ e.T)
        np.fill_diagonal(g, 0)
        self.assertAlmostEqual(r.max_abs_cos, g.max(), places=12)
        welch = np.sqrt((120 - 30) / (30 * 119))
        self.assertAlmostEqual(r.welch_bound, welch, places=12)
        self.assertGreaterEqual(g.max(), welch)
        self.assertEqual(r.converged, g.max() <= 0.25 + 1e-4)
        self.assertTrue(r.converged)

    def test_ebv_classify_is_brute_force_argmax(self):
        rng = np.random.default_rng(9)
        e = A(self.stub.EbvGenerate(knp.EbvGenerateRequest(n=20, d=24)).e)
        f = rng.standard_normal((15, 24))
        r = self.stub.EbvClassify(knp.EbvClassifyRequest(features=T(f), ebv=T(e), k=3))
        cos = (f / np.linalg.norm(f, axis=1, keepdims=True)) @ e.T
        ids = A(r.ids)
        np.testing.assert_array_equal(ids[:, 0], cos.argmax(1))
        np.testing.assert_allclose(A(r.cosines), np.take_along_axis(cos, ids, 1), atol=1e-12)

    def test_ebv_bad_input(self):
        INV = grpc.StatusCode.INVALID_ARGUMENT
        self.assertCode(INV, self.stub.EbvGenerate, knp.EbvGenerateRequest(n=0, d=4))
        self.assertCode(INV, self.stub.EbvGenerate, knp.EbvGenerateRequest(n=4, d=4, lr=-1))
        self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.EbvGenerate,
                        knp.EbvGenerateRequest(n=5000, d=100, max_steps=100000))
        # kernels_fuzz review: 4·N²·d·max_steps = 1.6e10 passed the old 2^38 cap (new cap 2^33, ≈ 5 s).
        self.assertIn("max_steps", self.assertCode(
            grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.EbvGenerate,
            knp.EbvGenerateRequest(n=200, d=50, tau=0, optimizer=knp.EbvGenerateRequest.OFFICIAL_SGD,
                                   max_steps=2000)))
        # The QR path (N ≤ d): n²·d = 2^34 passed the old cap and ran ~40 s.
        self.assertIn("n²·d", self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.EbvGenerate,
                                              knp.EbvGenerateRequest(n=1024, d=16384)))
        self.assertIn("ebv", self.assertCode(INV, self.stub.EbvClassify, knp.EbvClassifyRequest(
            features=T(np.ones((2, 3))), ebv=T(np.ones((4, 5))), k=1)))
        self.assertIn("k", self.assertCode(INV, self.stub.EbvClassify, knp.EbvClassifyRequest(
            features=T(np.ones((2, 3))), ebv=T(np.ones((4, 3))), k=5)))

    # ------------------------------------------------------------ M-FAC
    def test_mfac_static_and_window_match_dense_solve(self):
        rng = np.random.default_rng(10)
        m, d, damp = 8, 40, 1e-2
        g = rng.standard_normal((m + 3, d))
        x = rng.standard_normal((2, d))

        def dense_inv(grads):
            return np.linalg.inv(damp * np.eye(d) + grads.T @ grads / len(grads))

        fac = self.stub.MFacStaticPrecompute(knp.MFacStaticPrecomputeRequest(
            grads=T(g[:m]), damp=damp)).factor
        finv = dense_inv(g[:m])
        y = A(self.stub.MFacStaticApply(knp.MFacStaticApplyRequest(factor=fac, x=T(x))).y)
        np.testing.assert_allclose(y, x @ finv, rtol=1e-9, atol=1e-9 * np.abs(x @ finv).max())
        diag = A(self.stub.MFacStaticDiag(knp.MFacStaticDiagRequest(factor=fac)).diag)
        np.testing.assert_allclose(diag, np.diag(finv), rtol=1e-9)
        vals = A(self.stub.MFacStaticEntry(knp.MFacStaticEntryRequest(
            factor=fac, rows=T(np.array([0, 3, 39])), cols=T(np.array([5, 3, 1])))).values)
        np.testing.assert_allclose(vals, finv[[0, 3, 39], [5, 3, 1]], rtol=1e-8, atol=1e-8 * np.abs(finv).max())
        # Sliding window: after 3 updates it holds gradients 3..m+2.
        st = self.stub.MFacWindowInit(knp.MFacWindowInitRequest(grads=T(g[:m]), damp=damp)).state
        for t in range(3):
            st = self.stub.MFacWindowUpdate(knp.MFacWindowUpdateRequest(state=st, grad=T(g[m + t]))).state
        self.assertEqual(st.next_slot, 3)
        y = A(self.stub.MFacWindowApply(knp.MFacWindowApplyRequest(state=st, x=T(x[0]))).y)
        ref = dense_inv(g[3:m + 3]) @ x[0]
        np.testing.assert_allclose(y, ref, rtol=1e-8, atol=1e-8 * np.abs(ref).max())

    def test_int8_mixed_linear_scalar_path_work_cap(self):
        # kernels_fuzz review: the scalar GEMM at the old cap s·o·h = 2^35 took 11 s. s·o·h =
        # 2.1e10 (between 2^34 and 2^35) with pre-quantized weights (13 MB request).
        s, h, o = 4096, 512, 10000
        req = knp.Int8MixedLinearRequest(
            x=T(np.ones((s, h), np.float32)), w_codes=T(np.ones((o, h), np.int8)),
            w_scales=T(np.ones(o, np.float32)), gemm_path=knp.INT8_GEMM_PATH_SCALAR,
            outlier_weight=knp.Int8MixedLinearRequest.OUTLIER_WEIGHT_DEQUANT)
        msg = self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.Int8MixedLinear, req)
        self.assertIn("x / w", msg)

    def test_spgemm_smash_atomic_work_cap(self):
        # kernels_fuzz review: SMASH_ATOMIC costs ≈ 10 ns per partial product on one thread;
        # 2^30 of them (the old cap of every fast method) took 10 s. A [6000, 16] dense times
        # B [16, 6000] dense: 5.8e8 partial products, between its new cap 2^29 and 2^30.
        m = k = 16
        n = rows = 6000
        a_rp = np.arange(0, rows * k + 1, k, dtype=np.int64)
        a_col = np.tile(np.arange(k, dtype=np.int32), rows)
        b_rp = np.arange(0, m * n + 1, n, dtype=np.int64)
        b_col = np.tile(np.arange(n, dtype=np.int32), m)
        req = knp.SpGemmRequest(a_row_ptr=T(a_rp), a_col=T(a_col), a_val=T(np.ones(rows * k)), a_cols=k,
                                b_row_ptr=T(b_rp), b_col=T(b_col), b_val=T(np.ones(m * n)), b_cols=n,
                                method=knp.SpGemmRequest.SMASH_ATOMIC)
        msg = self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.SpGemm, req)
        self.assertIn("SpGemm (partial products)", msg)
        self.assertIn("a / b", msg)

    def test_mfac_bad_input(self):
        INV = grpc.StatusCode.INVALID_ARGUMENT
        g = np.ones((3, 5))
        self.assertIn("damp", self.assertCode(INV, self.stub.MFacStaticPrecompute,
                                              knp.MFacStaticPrecomputeRequest(grads=T(g), damp=0.0)))
        fac = self.stub.MFacStaticPrecompute(knp.MFacStaticPrecomputeRequest(grads=T(g), damp=1.0)).factor
        self.assertIn("x", self.assertCode(INV, self.stub.MFacStaticApply, knp.MFacStaticApplyRequest(
            factor=fac, x=T(np.ones(4)))))
        self.assertIn("rows", self.assertCode(INV, self.stub.MFacStaticEntry, knp.MFacStaticEntryRequest(
            factor=fac, rows=T(np.array([5])), cols=T(np.array([0])))))
        st = self.stub.MFacWindowInit(knp.MFacWindowInitRequest(grads=T(g), damp=1.0)).state
        st.next_slot = 7
        self.assertIn("next_slot", self.assertCode(INV, self.stub.MFacWindowApply, knp.MFacWindowApplyRequest(
            state=st, x=T(np.ones(5)))))
        # kernels_fuzz review: m²·(d+m) = 4.3e10 passed the old 2^36 cap (≈ 14 s at 2^36).
        self.assertIn("grads", self.assertCode(
            grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.MFacWindowInit,
            knp.MFacWindowInitRequest(grads=T(np.ones((3500, 10))), damp=1.0)))


if __name__ == "__main__":
    unittest.main()
