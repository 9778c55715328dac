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
                       kg.GAUNT_METHOD_FOURIER_DIRECT_CONV, kg.GAUNT_METHOD_DENSE):
            resp = self.stub.GauntTP(kg.GauntTPRequest(x=T(x), y=T(y), method=method,
                                                       threads=2))
            z = A(resp.z)
            self.assertEqual(z.shape, (b, c, (l1 + l2 + 1) ** 2))
            fg = np.einsum("pi,bci->bcp", y1, x) * np.einsum("pi,bci->bcp", y2, y)
            h = np.einsum("pi,bci->bcp", y3, z)
            np.testing.assert_allclose(h, fg, atol=1e-11 * np.abs(fg).max())
            outs[resp.method] = z
        self.assertEqual(set(outs), {"fourier", "direct", "grid", "fourier_direct_conv", "dense"})
        scale = np.abs(outs["direct"]).max()
        for name in ("fourier", "grid", "fourier_direct_conv", "dense"):
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

    def test_gaunt_tp_many_body_is_the_pointwise_power(self):
        rng = np.random.default_rng(12)
        l1, nu = 2, 3
        x = rng.standard_normal((2, 2, (l1 + 1) ** 2))
        resp = self.stub.GauntTP(kg.GauntTPRequest(x=T(x), nu=nu))
        z = A(resp.z)
        self.assertEqual(resp.method, "grid")
        self.assertEqual(z.shape, (2, 2, (nu * l1 + 1) ** 2))
        pts = random_unit(40, rng)
        f = np.einsum("pi,bci->bcp", real_sh(l1, pts), x)
        h = np.einsum("pi,bci->bcp", real_sh(nu * l1, pts), z)
        np.testing.assert_allclose(h, f ** nu, atol=1e-11 * np.abs(f ** nu).max())
        d = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.stub.GauntTP,
                            kg.GauntTPRequest(x=T(x), y=T(x), nu=nu))
        self.assertIn("nu", d)

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
        # kernels_fuzz review: 64 channels of L = 48 by the direct 2D convolution ran ~14 s
        # under the old 2^35 cap.
        d = self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.GauntTP,
                            kg.GauntTPRequest(x=T(np.zeros((1, 64, 49 * 49))), y=T(np.zeros((1, 1, 49 * 49))),
                                              method=kg.GAUNT_METHOD_FOURIER_DIRECT_CONV))
        self.assertIn("x: estimated work", d)

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

    # ------------------------------------------------------------ VFN
    @staticmethod
    def numpy_frames(bb):
        """Gram–Schmidt frames (origin CA, e1 = CA − C, e2 towards N), [N,3,3] and [N,3]."""
        n_at, ca, c = bb[:, 0], bb[:, 1], bb[:, 2]
        e1 = ca - c
        e1 /= np.linalg.norm(e1, axis=1, keepdims=True)
        u = n_at - ca
        e2 = u - (u * e1).sum(1, keepdims=True) * e1
        e2 /= np.linalg.norm(e2, axis=1, keepdims=True)
        return np.stack([e1, e2, np.cross(e1, e2)], axis=2), ca.copy()

    def test_vfn_edge_features_ipa_identity_and_invariance(self):
        rng = np.random.default_rng(4)
        n, k, s = 8, 3, 0.1
        bb = 5 * rng.standard_normal((n, 3, 3))
        q = rng.standard_normal((n, k, 3))
        v = rng.standard_normal((n, k, 3))
        w = np.concatenate([np.eye(k), -np.eye(k)], axis=1)
        req = kg.VFNEdgeFeaturesRequest(backbone=T(bb), q=T(q), v=T(v), all_pairs=True, w=T(w),
                                        coord_scale=s, threads=2)
        resp = self.stub.VFNEdgeFeatures(req)
        ij = A(resp.edges)
        self.assertEqual(ij.shape, (n * (n - 1), 2))
        rot, tr = self.numpy_frames(bb)
        np.testing.assert_allclose(A(resp.rot), rot, atol=1e-13)
        gq = np.einsum("nab,nkb->nka", rot, q) + s * tr[:, None, :]
        gv = np.einsum("nab,nkb->nka", rot, v) + s * tr[:, None, :]
        ipa = np.linalg.norm(gv[ij[:, 1]] - gq[ij[:, 0]], axis=-1)
        np.testing.assert_allclose(A(resp.len), ipa, atol=1e-12)
        # Naive route agrees; a global rigid motion changes nothing.
        naive = self.stub.VFNEdgeFeatures(kg.VFNEdgeFeaturesRequest(
            backbone=T(bb), q=T(q), v=T(v), all_pairs=True, w=T(w), coord_scale=s,
            method=kg.VFN_METHOD_NAIVE))
        np.testing.assert_allclose(A(naive.u), A(resp.u), atol=1e-12)
        qm, _ = np.linalg.qr(rng.standard_normal((3, 3)))
        qm *= np.sign(np.linalg.det(qm))
        moved = bb @ qm.T + np.array([1.0, 20.0, -3.0])
        w2 = rng.standard_normal((4, 2 * k))
        mu, sig = rng.standard_normal((4, 3)), np.full((4, 3), 0.7)
        a = self.stub.VFNEdgeFeatures(kg.VFNEdgeFeaturesRequest(
            backbone=T(bb), q=T(q), v=T(v), knn=3, w=T(w2), mu=T(mu), sigma=T(sig)))
        b = self.stub.VFNEdgeFeatures(kg.VFNEdgeFeaturesRequest(
            backbone=T(moved), q=T(q), v=T(v), knn=3, w=T(w2), mu=T(mu), sigma=T(sig)))
        np.testing.assert_array_equal(A(a.edges), A(b.edges))
        np.testing.assert_allclose(A(a.u), A(b.u), atol=1e-11)
        np.testing.assert_allclose(A(a.rbf), np.exp(-0.5 * ((A(a.len)[..., None] - mu) / sig) ** 2),
                                   atol=1e-14)

    def test_vfn_aggregate_matches_numpy_attention(self):
        rng = np.random.default_rng(5)
        n, h, d, kv = 7, 2, 3, 2
        rot = np.linalg.qr(rng.standard_normal((n, 3, 3)))[0]
        rot *= np.sign(np.linalg.det(rot))[:, None, None]
        tr = 3 * rng.standard_normal((n, 3))
        ij = np.array([(i, j) for i in range(n) for j in range(n) if (i + 2 * j) % 3 != 0])
        e = len(ij)
        logits = rng.standard_normal((e, h))
        mask = (rng.random(e) > 0.2).astype(np.uint8)
        val = rng.standard_normal((n, h, d))
        vv = rng.standard_normal((n, kv, 3))
        resp = self.stub.VFNAggregate(kg.VFNAggregateRequest(
            rot=T(rot), trans=T(tr), edges=T(ij), logits=T(logits), edge_mask=T(mask),
            val=T(val), vv=T(vv)))
        alpha = np.zeros((e, h))
        os_ref = np.zeros((n, h, d))
        ov_ref = np.zeros((n, h, kv, 3))
        for i in range(n):
            idx = np.where((ij[:, 0] == i) & (mask == 1))[0]
            if len(idx) == 0:
                continue
            ex = np.exp(logits[idx] - logits[idx].max(0))
            alpha[idx] = ex / ex.sum(0)
            for x in idx:
                j = ij[x, 1]
                glob = vv[j] @ rot[j].T + tr[j]
                local = (glob - tr[i]) @ rot[i]
                os_ref[i] += alpha[x][:, None] * val[j]
                ov_ref[i] += alpha[x][:, None, None] * local[None]
        np.testing.assert_allclose(A(resp.alpha), alpha, atol=1e-14)
        np.testing.assert_allclose(A(resp.o_scalar), os_ref, atol=1e-12)
        np.testing.assert_allclose(A(resp.o_vec), ov_ref, atol=1e-12)

    def test_vfn_rejects_bad_input(self):
        inv = grpc.StatusCode.INVALID_ARGUMENT
        rng = np.random.default_rng(6)
        bb = rng.standard_normal((4, 3, 3))
        q = np.zeros((4, 2, 3))
        w = np.zeros((2, 4))
        d = self.assertCode(inv, self.stub.VFNEdgeFeatures, kg.VFNEdgeFeaturesRequest(
            backbone=T(bb), rot=T(np.zeros((4, 3, 3))), q=T(q), v=T(q), all_pairs=True, w=T(w)))
        self.assertIn("backbone", d)
        d = self.assertCode(inv, self.stub.VFNEdgeFeatures, kg.VFNEdgeFeaturesRequest(
            backbone=T(bb), q=T(q), v=T(q), edges=T(np.array([[0, 4]])), w=T(w)))
        self.assertIn("edges", d)
        d = self.assertCode(inv, self.stub.VFNEdgeFeatures, kg.VFNEdgeFeaturesRequest(
            backbone=T(bb), q=T(q), v=T(q), all_pairs=True, w=T(np.zeros((1, 4))),
            residual=True))
        self.assertIn("residual", d)
        d = self.assertCode(inv, self.stub.VFNAggregate, kg.VFNAggregateRequest(
            rot=T(np.ones((4, 3, 3))), trans=T(np.zeros((4, 3))), all_pairs=True,
            logits=T(np.zeros((12, 1)))))
        self.assertIn("rot", d)
        big = np.tile(np.array([[1.0, 0, 0], [0, 0, 0], [0, 1.0, 0]]), (300, 1, 1))
        big[:, :, 2] += np.arange(300)[:, None]
        d = self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.VFNAggregate,
                            kg.VFNAggregateRequest(backbone=T(big), knn=2,
                                                   logits=T(np.zeros((600, 1))),
                                                   method=kg.VFN_METHOD_NAIVE))
        self.assertIn("naive", d)

    # ------------------------------------------------------------ S-GCN
    @staticmethod
    def chain(n, rng):
        ca = np.cumsum(3.8 * random_unit(n, rng), axis=0)
        return np.stack([ca + 0.8 * rng.standard_normal((n, 3)), ca,
                         ca + 0.8 * rng.standard_normal((n, 3))], axis=1)

    def test_spherical_graph_features_match_numpy_and_are_invariant(self):
        rng = np.random.default_rng(7)
        n, lmax, cut = 30, 4, 9.0
        bb = self.chain(n, rng)
        spec = kg.SphericalGraphSpec(backbone=T(bb), cutoff=cut, lmax=lmax)
        resp = self.stub.SphericalGraphFeatures(kg.SphericalGraphFeaturesRequest(graph=spec))
        ij = A(resp.edges)
        ca = bb[:, 1]
        dist = np.linalg.norm(ca[:, None] - ca[None], axis=-1)
        want = np.array([(i, j) for i in range(n) for j in range(n) if i != j and dist[i, j] <= cut])
        np.testing.assert_array_equal(ij, want)
        rot, _ = self.numpy_frames(bb)
        d = np.einsum("eba,eb->ea", rot[ij[:, 0]], ca[ij[:, 1]] - ca[ij[:, 0]])
        np.testing.assert_allclose(A(resp.local), d, atol=1e-12)
        u = d / np.linalg.norm(d, axis=1, keepdims=True)
        np.testing.assert_allclose(A(resp.y), real_sh(lmax, u), atol=1e-12)
        # Rigid motion: identical; reflection: Y[l,m] → (−1)^{l+|m|} Y[l,m].
        qm, _ = np.linalg.qr(rng.standard_normal((3, 3)))
        qm *= np.sign(np.linalg.det(qm))
        signs = np.array([(-1.0) ** (l + abs(m)) for l in range(lmax + 1) for m in range(-l, l + 1)])
        for sgn, expect in ((1.0, A(resp.y)), (-1.0, A(resp.y) * signs)):
            moved = sgn * bb @ qm.T + np.array([4.0, -1.0, 9.0])
            r2 = self.stub.SphericalGraphFeatures(kg.SphericalGraphFeaturesRequest(
                graph=kg.SphericalGraphSpec(backbone=T(moved), cutoff=cut, lmax=lmax),
                method=kg.SGCN_METHOD_NAIVE))
            np.testing.assert_array_equal(A(r2.edges), ij)
            np.testing.assert_allclose(A(r2.y), expect, atol=1e-11)

    def test_spherical_graph_tiny_cutoff_is_rejected(self):
        # kernels_fuzz (UBSan): floor(coordinate / cutoff) overflowed int64 in the cell list.
        bb = np.array([[[-0.5, 1.2, 0.3], [0, 0, 0], [1.1, -0.4, 0.6]],
                       [[3.3, 1.2, 0.3], [3.8, 2e62, 0], [4.9, 2e62, 0.6]]])
        for call, req in [
                (self.stub.SphericalGraphFeatures, kg.SphericalGraphFeaturesRequest(
                    graph=kg.SphericalGraphSpec(backbone=T(bb), cutoff=9.0))),
                (self.stub.SphericalGraphFeatures, kg.SphericalGraphFeaturesRequest(
                    graph=kg.SphericalGraphSpec(backbone=T(bb[:1] + 1.0), cutoff=1e-300)))]:
            d = self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, call, req)
            self.assertIn("cutoff", d)

    def test_spherical_graph_conv_matches_dense_numpy_layer(self):
        rng = np.random.default_rng(8)
        n, lmax, f, fp = 20, 2, 3, 4
        bb = self.chain(n, rng)
        centres = np.array([4.0, 8.0])
        spec = kg.SphericalGraphSpec(backbone=T(bb), cutoff=10.0, lmax=lmax,
                                     radial=kg.SGCN_RADIAL_RBF, rbf_centres=T(centres),
                                     rbf_width=2.0)
        feats = self.stub.SphericalGraphFeatures(kg.SphericalGraphFeaturesRequest(graph=spec))
        ij, y, r = A(feats.edges), A(feats.y), A(feats.sph)[:, 0]
        kr, ns = 2, (lmax + 1) ** 2
        x = rng.standard_normal((n, f))
        w0 = rng.standard_normal((f, fp))
        w = rng.standard_normal((ns * kr, f, fp))
        b = rng.standard_normal(fp)
        resp = self.stub.SphericalGraphConv(kg.SphericalGraphConvRequest(
            graph=spec, x=T(x), w0=T(w0), w=T(w), bias=T(b),
            activation=kg.SGCN_ACTIVATION_RELU, normalize_rows=True, threads=2))
        rad = np.exp(-0.5 * ((r[:, None] - centres) / 2.0) ** 2)
        indeg = np.bincount(ij[:, 0], minlength=n).astype(float)
        h = x @ w0 + b
        for t in range(ns):
            for c in range(kr):
                s_dense = np.zeros((n, n))
                np.add.at(s_dense, (ij[:, 0], ij[:, 1]), y[:, t] * rad[:, c])
                s_dense /= np.maximum(indeg, 1)[:, None]
                h += s_dense @ x @ w[t * kr + c]
        np.testing.assert_allclose(A(resp.h), np.maximum(h, 0), atol=1e-11)

    def test_spherical_graph_rejects_bad_input(self):
        inv = grpc.StatusCode.INVALID_ARGUMENT
        bb = self.chain(5, np.random.default_rng(9))
        d = self.assertCode(inv, self.stub.SphericalGraphFeatures, kg.SphericalGraphFeaturesRequest(
            graph=kg.SphericalGraphSpec(backbone=T(bb))))
        self.assertIn("cutoff", d)
        d = self.assertCode(inv, self.stub.SphericalGraphFeatures, kg.SphericalGraphFeaturesRequest(
            graph=kg.SphericalGraphSpec(backbone=T(bb), edges=T(np.array([[0, 0]])))))
        self.assertIn("self-loop", d)
        d = self.assertCode(inv, self.stub.SphericalGraphFeatures, kg.SphericalGraphFeaturesRequest(
            graph=kg.SphericalGraphSpec(backbone=T(bb[:, :2]), cutoff=5.0)))
        self.assertIn("backbone", d)
        d = self.assertCode(inv, self.stub.SphericalGraphConv, kg.SphericalGraphConvRequest(
            graph=kg.SphericalGraphSpec(backbone=T(bb), cutoff=8.0, lmax=1),
            x=T(np.zeros((5, 2))), w0=T(np.zeros((2, 3))), w=T(np.zeros((3, 2, 3)))))
        self.assertIn("w", d)
        big = np.repeat(bb[:1], 3000, axis=0) + np.arange(3000)[:, None, None] * 0.01
        d = self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.SphericalGraphFeatures,
                            kg.SphericalGraphFeaturesRequest(
                                graph=kg.SphericalGraphSpec(backbone=T(big), cutoff=100.0)))
        self.assertIn("edges", d)

    # ------------------------------------------------------------ Lie groups
    @staticmethod
    def random_glp(b, n, rng):
        g = rng.standard_normal((b, n, n)) + 1.5 * np.eye(n)
        d = np.linalg.det(g)
        g[d < 0, :, 0] *= -1  # flip a column: det > 0
        return g

    def test_lie_decompose_matches_numpy_polar_and_composes_back(self):
        rng = np.random.default_rng(10)
        for n in (2, 3):
            g = self.random_glp(16, n, rng)
            resp = self.stub.LieDecompose(kg.LieDecomposeRequest(g=T(g), alpha=0.5, threads=2))
            p, r, x = A(resp.p), A(resp.r), A(resp.x)
            # Independent numpy route: P = (g gᵀ)^{1/2}, X = ½ log(g gᵀ) by eigh.
            lam, v = np.linalg.eigh(g @ g.transpose(0, 2, 1))
            p_ref = np.einsum("bij,bj,bkj->bik", v, np.sqrt(lam), v)
            x_ref = np.einsum("bij,bj,bkj->bik", v, 0.5 * np.log(lam), v)
            np.testing.assert_allclose(p, p_ref, atol=1e-12)
            np.testing.assert_allclose(x, x_ref, atol=1e-12)
            np.testing.assert_allclose(p @ r, g, atol=1e-12)
            np.testing.assert_allclose(np.linalg.det(r), 1.0, atol=1e-13)
            # log J(X) from numpy eigenvalues of X.
            ev = 0.5 * np.log(lam)
            lj = sum(np.log(np.sinh(d) / d) for d in
                     [np.abs(ev[:, i] - ev[:, j]) for i in range(n) for j in range(i + 1, n)])
            np.testing.assert_allclose(A(resp.log_haar), lj, atol=1e-10)
            comp = self.stub.LieCompose(kg.LieComposeRequest(n=n, xi=resp.xi, alpha=0.5))
            np.testing.assert_allclose(A(comp.g), g, atol=1e-12)
        # SL(2): xi has 3 coordinates; det must be 1.
        g = self.random_glp(4, 2, rng)
        g /= np.sqrt(np.linalg.det(g))[:, None, None]
        resp = self.stub.LieDecompose(kg.LieDecomposeRequest(g=T(g), group=kg.LIE_GROUP_SL))
        self.assertEqual(A(resp.xi).shape, (4, 3))
        np.testing.assert_allclose(np.trace(A(resp.x), axis1=1, axis2=2), 0, atol=1e-14)

    def test_lie_sample_pairs_and_determinism(self):
        for group, n, sampler in ((kg.LIE_GROUP_GL_PLUS, 2, kg.LIE_SO_EQUIDISTANT),
                                  (kg.LIE_GROUP_SL, 3, kg.LIE_SO_HAAR)):
            req = kg.LieSampleRequest(group=group, n=n, count=10, seed=5, so_sampler=sampler)
            a, b = self.stub.LieSample(req), self.stub.LieSample(req)
            self.assertEqual(a.g.data, b.g.data)
            g, gi, x, r = A(a.g), A(a.g_inv), A(a.x), A(a.r)
            np.testing.assert_allclose(g @ gi, np.broadcast_to(np.eye(n), g.shape), atol=1e-13)
            lam, v = np.linalg.eigh(x)
            p = np.einsum("bij,bj,bkj->bik", v, np.exp(lam), v)
            np.testing.assert_allclose(p @ r, g, atol=1e-13)
            if group == kg.LIE_GROUP_SL:
                np.testing.assert_allclose(np.linalg.det(g), 1.0, atol=1e-13)
            self.assertTrue(np.isfinite(A(a.log_w)).all())

    def test_affine_lift_coords(self):
        rng = np.random.default_rng(11)
        go = self.random_glp(2, 2, rng)
        gi = self.random_glp(3, 2, rng)
        k = 3
        resp = self.stub.AffineLiftCoords(kg.AffineLiftCoordsRequest(
            g_out_inv=T(go), g_in=T(gi), kernel_size=k))
        coords, mask, vol = A(resp.coords), A(resp.mask), A(resp.vol)
        self.assertEqual(coords.shape, (2, 3, k, k, 6))
        np.testing.assert_allclose(vol, 1 / np.linalg.det(gi), rtol=1e-14)
        grid = np.stack(np.meshgrid(np.linspace(-1, 1, k), np.linspace(-1, 1, k), indexing="ij"), -1)
        spatial = np.einsum("oab,uvb->ouva", go, grid)
        np.testing.assert_allclose(coords[..., :2], np.broadcast_to(spatial[:, None], coords[..., :2].shape),
                                   atol=1e-14)
        np.testing.assert_array_equal(mask, (np.linalg.norm(coords[..., :2], axis=-1) <= 1).astype(float))
        # The algebra part is xi(g_o⁻¹·g̃_i), as returned by LieDecompose.
        h = np.einsum("oab,ibc->oiac", go, gi).reshape(-1, 2, 2)
        dec = self.stub.LieDecompose(kg.LieDecomposeRequest(g=T(h)))
        np.testing.assert_allclose(coords[:, :, 0, 0, 2:].reshape(-1, 4), A(dec.xi), atol=1e-12)

    def test_lie_rejects_bad_input(self):
        inv = grpc.StatusCode.INVALID_ARGUMENT
        bad = np.array([[[1.0, 0], [0, -1]]])
        d = self.assertCode(inv, self.stub.LieDecompose, kg.LieDecomposeRequest(g=T(bad)))
        self.assertIn("det", d)
        d = self.assertCode(inv, self.stub.LieDecompose, kg.LieDecomposeRequest(
            g=T(np.array([[[2.0, 0], [0, 1]]])), group=kg.LIE_GROUP_SL))
        self.assertIn("sl_tol", d)
        d = self.assertCode(inv, self.stub.LieDecompose, kg.LieDecomposeRequest(g=T(np.eye(4)[None])))
        self.assertIn("n = 2 or 3", d)
        d = self.assertCode(inv, self.stub.LieCompose, kg.LieComposeRequest(
            n=2, x=T(np.array([[[0.0, 1], [0, 0]]])), omega=T(np.zeros((1, 2, 2)))))
        self.assertIn("symmetric", d)
        d = self.assertCode(inv, self.stub.LieSample, kg.LieSampleRequest(
            n=3, count=4, so_sampler=kg.LIE_SO_EQUIDISTANT))
        self.assertIn("n = 2", d)
        d = self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.LieSample,
                            kg.LieSampleRequest(n=2, count=1 << 21))
        self.assertIn("count", d)


if __name__ == "__main__":
    unittest.main()
