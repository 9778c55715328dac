"""End-to-end round trips of the geometry kernel family through the real server.

Each test checks a property of the answer against an independent numpy computation
(float64): real spherical harmonics evaluated by the explicit factorial/derivative formula
(not the server's recurrence), classical MDS by a full numpy eigendecomposition, plus the
bad-input paths (INVALID_ARGUMENT / RESOURCE_EXHAUSTED).
"""
import math
import unittest

import grpc
import numpy as np
from numpy.polynomial import legendre

import harness
from chamferdb.v1 import kernels_geometry_pb2 as kg
from chamferdb.v1 import kernels_pb2_grpc

T = harness.tensor
A = harness.array


def real_sh(lmax, r):
    """Orthonormal real SH (z polar, no Condon–Shortley phase), [n, (lmax+1)²]."""
    x, y, z = r[:, 0], r[:, 1], r[:, 2]
    phi = np.arctan2(y, x)
    out = np.zeros((len(r), (lmax + 1) ** 2))
    for l in range(lmax + 1):
        for k in range(l + 1):
            p = legendre.Legendre.basis(l).deriv(k)(z) * (1 - z * z) ** (k / 2)
            n = math.sqrt((2 * l + 1) / (4 * math.pi) * math.factorial(l - k)
                          / math.factorial(l + k))
            if k == 0:
                out[:, l * l + l] = n * p
            else:
                out[:, l * l + l + k] = math.sqrt(2) * n * p * np.cos(k * phi)
                out[:, l * l + l - k] = math.sqrt(2) * n * p * np.sin(k * phi)
    return out


def random_unit(n, rng):
    v = rng.standard_normal((n, 3))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


class GeometryKernelsTest(unittest.TestCase):
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

    # ------------------------------------------------------------ GauntTP
    def test_gaunt_tp_is_the_pointwise_product_for_every_method(self):
        rng = np.random.default_rng(1)
        b, c, l1, l2 = 2, 3, 3, 4
        x = rng.standard_normal((b, c, (l1 + 1) ** 2))
        y = rng.standard_normal((b, c, (l2 + 1) ** 2))
        pts = random_unit(60, rng)
        y1, y2, y3 = real_sh(l1, pts), real_sh(l2, pts), real_sh(l1 + l2, pts)
        outs = {}
        for method in (kg.GAUNT_METHOD_FOURIER, kg.GAUNT_METHOD_DIRECT, kg.GAUNT_METHOD_GRID,
                       kg.GAUNT_METHOD_FOURIER_DIRECT_CONV):
            resp = self.stub.GauntTP(kg.GauntTPRequest(x=T(x), y=T(y), method=method,
                                                       threads=2))
            z = A(resp.z)
            self.assertEqual(z.shape, (b, c, (l1 + l2 + 1) ** 2))
            fg = np.einsum("pi,bci->bcp", y1, x) * np.einsum("pi,bci->bcp", y2, y)
            h = np.einsum("pi,bci->bcp", y3, z)
            np.testing.assert_allclose(h, fg, atol=1e-11 * np.abs(fg).max())
            outs[resp.method] = z
        self.assertEqual(set(outs), {"fourier", "direct", "grid", "fourier_direct_conv"})
        scale = np.abs(outs["direct"]).max()
        for name in ("fourier", "grid", "fourier_direct_conv"):
            self.assertLess(np.abs(outs[name] - outs["direct"]).max() / scale, 1e-12, name)

    def test_gaunt_tp_weights_broadcast_truncation_and_float32(self):
        rng = np.random.default_rng(2)
        b, c, l1, l2, lout = 2, 4, 2, 3, 3
        x = rng.standard_normal((b, c, (l1 + 1) ** 2))
        y = rng.standard_normal((b, 1, (l2 + 1) ** 2))
        w1 = rng.standard_normal((c, l1 + 1))
        w2 = rng.standard_normal((c, l2 + 1))
        wout = rng.standard_normal((c, lout + 1))
        resp = self.stub.GauntTP(kg.GauntTPRequest(
            x=T(x), y=T(y), lout=lout, w1=T(w1), w2=T(w2), wout=T(wout),
            method=kg.GAUNT_METHOD_GRID))
        z = A(resp.z)
        # Reference: project the weighted pointwise product with an exact quadrature built
        # here (Gauss–Legendre in cosθ × equispaced φ, band limit l1 + l2 + lout).
        n = l1 + l2 + lout
        xs, ws = np.polynomial.legendre.leggauss(n // 2 + 1)
        na = n + 1
        th = np.arccos(xs)
        al = 2 * np.pi * np.arange(na) / na
        pts = np.stack([np.outer(np.sin(th), np.cos(al)).ravel(),
                        np.outer(np.sin(th), np.sin(al)).ravel(),
                        np.repeat(xs, na)], axis=1)
        wq = np.repeat(ws, na) * 2 * np.pi / na
        deg = lambda L: np.concatenate([[l] * (2 * l + 1) for l in range(L + 1)])
        xw = x * w1[None, :, deg(l1)]
        yw = y * w2[None, :, deg(l2)]
        f = np.einsum("pi,bci->bcp", real_sh(l1, pts), xw)
        g = np.einsum("pi,bci->bcp", real_sh(l2, pts), yw)
        ref = np.einsum("pi,bcp->bci", real_sh(lout, pts) * wq[:, None], f * g)
        ref *= wout[None, :, deg(lout)]
        np.testing.assert_allclose(z, ref, atol=1e-12 * np.abs(ref).max())
        # float32 in, float32 out, same answer to float32 precision.
        resp32 = self.stub.GauntTP(kg.GauntTPRequest(
            x=T(x.astype(np.float32)), y=T(y.astype(np.float32)), lout=lout, w1=T(w1),
            w2=T(w2), wout=T(wout), method=kg.GAUNT_METHOD_FOURIER))
        z32 = A(resp32.z)
        self.assertEqual(z32.dtype, np.float32)
        np.testing.assert_allclose(z32, ref, atol=1e-5 * np.abs(ref).max())

    def test_gaunt_tp_caches_tables(self):
        x = np.ones((1, 1, 36))
        req = kg.GauntTPRequest(x=T(x), y=T(x), lout=9, method=kg.GAUNT_METHOD_FOURIER)
        self.stub.GauntTP(req)
        second = self.stub.GauntTP(req)
        self.assertTrue(second.cache_hit)
        self.assertEqual(second.setup_seconds, 0.0)
        self.assertEqual(second.fft_size, 21)  # smallest 7-smooth ≥ 2·10+1

    def test_gaunt_tp_rejects_bad_input(self):
        ok = np.zeros((1, 2, 4))
        inv = grpc.StatusCode.INVALID_ARGUMENT
        d = self.assertCode(inv, self.stub.GauntTP,
                            kg.GauntTPRequest(x=T(np.zeros((1, 2, 5))), y=T(ok)))
        self.assertIn("x", d)
        d = self.assertCode(inv, self.stub.GauntTP, kg.GauntTPRequest(x=T(ok), y=T(ok), lout=3))
        self.assertIn("lout", d)
        bad = ok.copy()
        bad[0, 1, 2] = np.nan
        d = self.assertCode(inv, self.stub.GauntTP, kg.GauntTPRequest(x=T(ok), y=T(bad)))
        self.assertIn("y", d)
        d = self.assertCode(inv, self.stub.GauntTP, kg.GauntTPRequest(
            x=T(ok), y=T(np.zeros((1, 3, 4)))))
        self.assertIn("y_channels", d)
        d = self.assertCode(inv, self.stub.GauntTP, kg.GauntTPRequest(
            x=T(ok), y=T(ok), w1=T(np.ones((2, 3)))))
        self.assertIn("w1", d)
        d = self.assertCode(inv, self.stub.GauntTP, kg.GauntTPRequest(
            x=T(ok), y=T(ok), method=kg.GAUNT_METHOD_GRID, n_alpha=2))
        self.assertIn("n_alpha", d)
        d = self.assertCode(inv, self.stub.GauntTP, kg.GauntTPRequest(
            x=T(ok.astype(np.int32)), y=T(ok)))
        self.assertIn("x", d)
        # Work cap: 20000 channels against a broadcast L2 = 48 input.
        d = self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.GauntTP,
                            kg.GauntTPRequest(x=T(np.zeros((1, 20000, 1))),
                                              y=T(np.zeros((1, 1, 49 * 49)))))
        self.assertIn("cap", d)

    # ------------------------------------------------------------ InvariantMDS
    @staticmethod
    def numpy_mds(p, k):
        """Classical MDS by a full numpy eigendecomposition + third-moment signs."""
        d2 = ((p[:, None, :] - p[None, :, :]) ** 2).sum(-1)
        n = len(p)
        j = np.eye(n) - np.ones((n, n)) / n
        lam, u = np.linalg.eigh(-0.5 * j @ d2 @ j)
        lam, u = lam[::-1][:k], u[:, ::-1][:, :k]
        y = u * np.sqrt(np.maximum(lam, 0))
        y *= np.where((y ** 3).sum(0) < 0, -1.0, 1.0)
        return y, lam

    def test_invariant_mds_matches_numpy_mds_and_is_invariant(self):
        rng = np.random.default_rng(3)
        b, n = 2, 60
        p = rng.standard_normal((b, n, 3)) * np.array([3.0, 2.0, 1.0])
        p[..., 2] += 0.5 * np.abs(rng.standard_normal((b, n)))
        resp = self.stub.InvariantMDS(kg.InvariantMDSRequest(points=T(p), threads=2))
        self.assertEqual(resp.method, "fast")
        y = A(resp.y)
        self.assertEqual(y.shape, (b, n, 3))
        self.assertTrue((A(resp.flags) == 0).all())
        for i in range(b):
            ref, lam = self.numpy_mds(p[i], 3)
            np.testing.assert_allclose(y[i], ref, atol=1e-10)
            np.testing.assert_allclose(A(resp.eigvals)[i], lam, rtol=1e-10)
        # Reflection + rotation (det −1), translation, permutation.
        q_mat, _ = np.linalg.qr(rng.standard_normal((3, 3)))
        if np.linalg.det(q_mat) > 0:
            q_mat[:, 0] *= -1
        perm = rng.permutation(n)
        moved = (p @ q_mat.T + np.array([5.0, -1.0, 2.0]))[:, perm, :]
        for method in (kg.MDS_METHOD_FAST, kg.MDS_METHOD_NAIVE):
            r2 = self.stub.InvariantMDS(kg.InvariantMDSRequest(points=T(moved), method=method))
            np.testing.assert_allclose(A(r2.y), y[:, perm, :], atol=1e-10)

    def test_invariant_mds_graph_distances(self):
        n = 10
        h = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
        dist = np.minimum(h, n - h).astype(np.float64)[None]  # cycle graph geodesics
        resp = self.stub.InvariantMDS(kg.InvariantMDSRequest(dist=T(dist), k=n))
        self.assertEqual(resp.method, "naive")
        y, lam, flags = A(resp.y)[0], A(resp.eigvals)[0], A(resp.flags)[0]
        neg = lam < -1e-9
        self.assertTrue(neg.any())
        self.assertTrue(((flags[neg] & 4) != 0).all())
        self.assertTrue((y[:, neg] == 0).all())
        dy = np.linalg.norm(y[:, None, :] - y[None, :, :], axis=-1)
        self.assertAlmostEqual(A(resp.stress)[0], np.linalg.norm(dist[0] - dy), places=10)
        # The cycle is symmetric: degenerate eigenvalue pairs must be flagged.
        self.assertTrue((flags[:2] & 1).all())

    def test_invariant_mds_rejects_bad_input(self):
        inv = grpc.StatusCode.INVALID_ARGUMENT
        p = np.zeros((1, 5, 3))
        d = self.assertCode(inv, self.stub.InvariantMDS, kg.InvariantMDSRequest(
            points=T(p), dist=T(np.zeros((1, 5, 5))), k=2))
        self.assertIn("points", d)
        d = self.assertCode(inv, self.stub.InvariantMDS,
                            kg.InvariantMDSRequest(points=T(p), k=4))
        self.assertIn("k", d)
        asym = np.array([[[0, 1, 2], [1, 0, 1], [2.5, 1, 0]]], dtype=np.float64)
        d = self.assertCode(inv, self.stub.InvariantMDS,
                            kg.InvariantMDSRequest(dist=T(asym), k=2))
        self.assertIn("symmetric", d)
        d = self.assertCode(inv, self.stub.InvariantMDS,
                            kg.InvariantMDSRequest(points=T(p), degeneracy_tol=2.0))
        self.assertIn("degeneracy_tol", d)
        d = self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.InvariantMDS,
                            kg.InvariantMDSRequest(points=T(np.zeros((1, 3000, 1))),
                                                   method=kg.MDS_METHOD_NAIVE))
        self.assertIn("cap", d)


if __name__ == "__main__":
    unittest.main()
