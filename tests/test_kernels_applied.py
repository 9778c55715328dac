"""End-to-end round trips of the applied kernel family through the real server.

Each test checks a property of the answer against an independent numpy computation
(float64): Bures–Wasserstein maps from numpy eigendecompositions and their closed forms,
a dense numpy sheaf diffusion, numpy argsort top-k and metric formulas, plus the bad-input
paths (INVALID_ARGUMENT / RESOURCE_EXHAUSTED / UNIMPLEMENTED).
"""
import math
import unittest

import grpc
import numpy as np

import harness
from chamferdb.v1 import kernels_applied_pb2 as ka
from chamferdb.v1 import kernels_pb2_grpc

T = harness.tensor
A = harness.array


def spd(n, rng, kappa=10.0):
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    lam = kappa ** rng.uniform(0, 1, n)
    return (q * lam) @ q.T


def sqrtm(x):
    w, u = np.linalg.eigh((x + x.T) / 2)
    return (u * np.sqrt(np.maximum(w, 0))) @ u.T


def invsqrtm(x):
    w, u = np.linalg.eigh((x + x.T) / 2)
    return (u / np.sqrt(w)) @ u.T


def bw_dist_sq(x, y):
    xh = sqrtm(x)
    return np.trace(x) + np.trace(y) - 2 * np.trace(sqrtm(xh @ y @ xh))


def ot_map(x, y):
    xh, xih = sqrtm(x), invsqrtm(x)
    return xih @ sqrtm(xh @ y @ xh) @ xih


def lyap(x, v):
    w, u = np.linalg.eigh(x)
    return u @ ((u.T @ v @ u) / (w[:, None] + w[None, :])) @ u.T


class AppliedKernelsTest(unittest.TestCase):
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

    # ---------------------------------------------------------------- Bures–Wasserstein

    def test_bw_distance_matches_numpy_and_commuting_closed_form(self):
        rng = np.random.default_rng(1)
        xs = np.stack([spd(5, rng) for _ in range(4)])
        ys = np.stack([spd(5, rng) for _ in range(4)])
        for formula in (ka.BW_TRACE, ka.BW_LOG_NORM):
            r = self.stub.BWDistance(ka.BWDistanceRequest(x=T(xs), y=T(ys), formula=formula))
            want = np.array([bw_dist_sq(a, b) for a, b in zip(xs, ys)])
            np.testing.assert_allclose(A(r.dist_sq), want, rtol=1e-10)
        # Commuting pair with condition number 1e8: d² = ‖X^½ − Y^½‖²_F.
        q, _ = np.linalg.qr(rng.standard_normal((6, 6)))
        a, b = 10.0 ** rng.uniform(-4, 4, 6), 10.0 ** rng.uniform(-4, 4, 6)
        r = self.stub.BWDistance(ka.BWDistanceRequest(x=T((q * a) @ q.T), y=T((q * b) @ q.T)))
        want = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
        self.assertAlmostEqual(A(r.dist_sq)[0] / want, 1.0, delta=1e-8)
        # Generalized BW = BW after congruence by M^{-1/2}.
        m = spd(5, rng)
        mi = invsqrtm(m)
        r = self.stub.BWDistance(ka.BWDistanceRequest(x=T(xs[0]), y=T(ys[0]), m=T(m)))
        self.assertAlmostEqual(A(r.dist_sq)[0], bw_dist_sq(mi @ xs[0] @ mi, mi @ ys[0] @ mi),
                               delta=1e-10 * A(r.dist_sq)[0])

    def test_bw_barycenter_two_points_is_geodesic_midpoint_and_optimal(self):
        rng = np.random.default_rng(2)
        x, y = spd(4, rng), spd(4, rng)
        t = ot_map(x, y)
        a = 0.5 * (np.eye(4) + t)
        midpoint = a @ x @ a
        for method in (ka.BW_FAST, ka.BW_REFERENCE):
            r = self.stub.BWBarycenter(ka.BWBarycenterRequest(x=T(np.stack([x, y])), tol=1e-14,
                                                              method=method))
            self.assertTrue(r.converged)
            np.testing.assert_allclose(A(r.mean), midpoint, rtol=1e-10, atol=1e-12)
        xs = np.stack([spd(4, rng) for _ in range(6)])
        w = rng.uniform(0.1, 1.0, 6)
        r = self.stub.BWBarycenter(ka.BWBarycenterRequest(x=T(xs), weights=T(w), tol=1e-13))
        s = A(r.mean)
        resid = sum(wi * ot_map(s, xi) for wi, xi in zip(w / w.sum(), xs)) - np.eye(4)
        self.assertLess(np.linalg.norm(resid), 1e-10)
        self.assertLess(r.residual, 1e-10)
        one = self.stub.BWBarycenter(ka.BWBarycenterRequest(x=T(xs), weights=T(w), iters=1))
        self.assertEqual(one.iterations, 1)

    def test_bw_geodesic_matches_transport_form(self):
        rng = np.random.default_rng(3)
        x, y = spd(5, rng), spd(5, rng)
        ts = np.array([0.0, 0.3, 1.0, 1.5])
        r = self.stub.BWGeodesic(ka.BWGeodesicRequest(x=T(x), y=T(y), t=T(ts)))
        pts = A(r.points)
        tm = ot_map(x, y)
        for k, t in enumerate(ts):
            a = (1 - t) * np.eye(5) + t * tm
            np.testing.assert_allclose(pts[k], a @ x @ a, rtol=1e-10, atol=1e-11)

    def test_bw_exp_inverts_log_and_solves_lyapunov(self):
        rng = np.random.default_rng(4)
        x = spd(5, rng)
        ys = np.stack([spd(5, rng) for _ in range(3)])
        logs = self.stub.BWExpLog(ka.BWExpLogRequest(op=ka.BW_LOG, base=T(x), inputs=T(ys)))
        v = A(logs.outputs)
        self.assertTrue(np.all(A(logs.margin) > 0))
        exps = self.stub.BWExpLog(ka.BWExpLogRequest(op=ka.BW_EXP, base=T(x), inputs=T(v)))
        np.testing.assert_allclose(A(exps.outputs), ys, rtol=1e-9, atol=1e-10)
        for vi, yi in zip(v, A(exps.outputs)):
            lv = lyap(x, vi)
            np.testing.assert_allclose(yi, x + vi + lv @ x @ lv, rtol=1e-10, atol=1e-10)

    def test_bw_batchnorm_centered_batch_has_identity_barycenter(self):
        rng = np.random.default_rng(5)
        xs = np.stack([spd(4, rng, kappa=3.0) for _ in range(8)])
        probe = self.stub.BWBatchNorm(ka.BWBatchNormRequest(x=T(xs), bary_iters=0, eps=0.0))
        r = self.stub.BWBatchNorm(ka.BWBatchNormRequest(
            x=T(xs), bary_iters=0, bary_tol=1e-14, eps=0.0, s=math.sqrt(probe.var)))
        y = A(r.y)
        self.assertTrue(np.all(A(r.center_margin) >= 0))
        # The BW barycenter is I iff Σ T_{I→Y_i}/N = mean Y_i^{1/2} = I.
        np.testing.assert_allclose(np.mean([sqrtm(yi) for yi in y], axis=0), np.eye(4),
                                   atol=1e-11)
        # var (code parity: centered at I) = mean d²(X_i, I).
        self.assertAlmostEqual(probe.var, np.mean([bw_dist_sq(xi, np.eye(4)) for xi in xs]),
                               delta=1e-10 * probe.var)
        # Running mean moved 0.1 of the way from I to G along the geodesic.
        g = A(probe.mean)
        a = 0.9 * np.eye(4) + 0.1 * ot_map(np.eye(4), g)
        np.testing.assert_allclose(A(probe.running_mean), a @ a, rtol=1e-10, atol=1e-12)
        # Reference and fast paths agree, including M, θ and eval mode.
        req = ka.BWBatchNormRequest(x=T(xs), m=T(spd(4, rng)), b=T(spd(4, rng)), theta=0.5,
                                    s=1.2, eval=True, running_mean=T(spd(4, rng)),
                                    running_var=0.8)
        fast = self.stub.BWBatchNorm(req)
        req.method = ka.BW_REFERENCE
        ref = self.stub.BWBatchNorm(req)
        np.testing.assert_allclose(A(fast.y), A(ref.y), rtol=1e-9, atol=1e-12)

    def test_bw_bad_input(self):
        rng = np.random.default_rng(6)
        bad = np.array([[[1.0, 2.0], [2.0, 1.0]]])
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.stub.BWBatchNorm,
                        ka.BWBatchNormRequest(x=T(bad)))
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.stub.BWDistance,
                        ka.BWDistanceRequest(x=T(spd(3, rng)), y=T(spd(4, rng))))
        self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.BWDistance,
                        ka.BWDistanceRequest(x=T(np.eye(300)), y=T(np.eye(300))))
        self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.BWBarycenter,
                        ka.BWBarycenterRequest(x=T(np.stack([np.eye(3)] * 2)), iters=5000))
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.stub.BWExpLog,
                        ka.BWExpLogRequest(base=T(np.eye(2)), inputs=T(np.stack([np.eye(2)]))))
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.stub.BWGeodesic,
                        ka.BWGeodesicRequest(x=T(np.eye(2)), y=T(np.eye(2)),
                                             t=T(np.array([np.nan]))))

    # ---------------------------------------------------------------- Sheaf4Rec

    def sheaf_case(self, rng, users=6, items=9, d=4, layers=2):
        mask = rng.uniform(size=(users, items)) < 0.4
        edges = np.argwhere(mask).astype(np.int32)
        x0 = 0.3 * rng.standard_normal((users + items, d))
        ls = [(rng.standard_normal(2 * d) / math.sqrt(2 * d),
               rng.standard_normal((d, d)) / math.sqrt(d), 0.1 * rng.standard_normal(d))
              for _ in range(layers)]
        return edges, x0, ls

    def numpy_sheaf(self, users, items, edges, x0, ls, alpha):
        n = users + items
        x = x0.copy()
        outs = [x.copy()]
        for w, wm, b in ls:
            lap = np.zeros((n, n))
            for u, i in edges:
                a, c = u, users + i
                fa = math.tanh(w @ np.concatenate([x[a], x[c]]))
                fc = math.tanh(w @ np.concatenate([x[c], x[a]]))
                lap[a, a] += fa * fa
                lap[c, c] += fc * fc
                lap[a, c] -= fa * fc
                lap[c, a] -= fa * fc
            dt = 1 / np.sqrt(np.diag(lap) + 1)
            x = x - alpha * (dt[:, None] * lap * dt[None, :]) @ (x @ wm.T + b)
            outs.append(x.copy())
        return np.mean(outs, axis=0)

    def test_sheaf_diffusion_matches_dense_numpy(self):
        rng = np.random.default_rng(7)
        edges, x0, ls = self.sheaf_case(rng)
        layers = [ka.SheafLayerWeights(w=T(w), weight=T(wm), bias=T(b)) for w, wm, b in ls]
        want = self.numpy_sheaf(6, 9, edges, x0, ls, 0.8)
        for method in (ka.SHEAF_FAST, ka.SHEAF_REFERENCE):
            r = self.stub.SheafDiffusion(ka.SheafDiffusionRequest(
                edges=T(edges), num_users=6, num_items=9, x0=T(x0), layers=layers, alpha=0.8,
                method=method, return_maps=True))
            np.testing.assert_allclose(A(r.h), want, rtol=1e-10, atol=1e-12)
            self.assertEqual(list(A(r.maps).shape), [2, 2 * len(edges)])

    def test_sheaf_bad_input(self):
        rng = np.random.default_rng(8)
        edges, x0, ls = self.sheaf_case(rng)
        layers = [ka.SheafLayerWeights(w=T(w), weight=T(wm), bias=T(b)) for w, wm, b in ls]
        bad = edges.copy()
        bad[0, 1] = 99
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.stub.SheafDiffusion,
                        ka.SheafDiffusionRequest(edges=T(bad), num_users=6, num_items=9,
                                                 x0=T(x0), layers=layers))
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.stub.SheafDiffusion,
                        ka.SheafDiffusionRequest(edges=T(edges), num_users=6, num_items=9,
                                                 x0=T(x0[:5]), layers=layers))
        self.assertCode(grpc.StatusCode.UNIMPLEMENTED, self.stub.SheafDiffusion,
                        ka.SheafDiffusionRequest(edges=T(edges), num_users=6, num_items=9,
                                                 x0=T(x0), layers=layers, stalk_dim=2))
        self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.RecommendTopK,
                        ka.RecommendTopKRequest(h_users=T(x0), h_items=T(x0), k=5000))

    def test_recommend_topk_matches_numpy_argsort_with_mask(self):
        rng = np.random.default_rng(9)
        hu, hi = rng.standard_normal((20, 5)), rng.standard_normal((30, 5))
        train = np.argwhere(rng.uniform(size=(20, 30)) < 0.3).astype(np.int64)
        for method in (ka.SHEAF_FAST, ka.SHEAF_REFERENCE):
            r = self.stub.RecommendTopK(ka.RecommendTopKRequest(
                h_users=T(hu), h_items=T(hi), train_edges=T(train), k=7, method=method))
            s = hu @ hi.T
            s[train[:, 0], train[:, 1]] = -np.inf
            want = np.argsort(-s, axis=1, kind="stable")[:, :7]
            np.testing.assert_array_equal(A(r.items), want)
            np.testing.assert_allclose(A(r.scores), np.take_along_axis(s, want, 1), rtol=1e-12)

    def test_ranking_metrics_match_numpy_formulas(self):
        rng = np.random.default_rng(10)
        users, items, kmax = 15, 40, 10
        topk = np.stack([rng.permutation(items)[:kmax] for _ in range(users)]).astype(np.int32)
        test = np.argwhere(rng.uniform(size=(users, items)) < 0.15).astype(np.int32)
        pos, neg = rng.standard_normal(50) + 1, rng.standard_normal(200)
        r = self.stub.RankingMetrics(ka.RankingMetricsRequest(
            topk_items=T(topk), test_edges=T(test), ks=[5, 10], pos_scores=T(pos),
            neg_scores=T(neg), hits_ks=[20]))
        for m in r.at_k:
            p, rc, nd, hit = [], [], [], []
            for u in range(users):
                truth = set(test[test[:, 0] == u, 1])
                if not truth:
                    continue
                rel = [1.0 if it in truth else 0.0 for it in topk[u, :m.k]]
                p.append(sum(rel) / m.k)
                rc.append(sum(rel) / len(truth))
                dcg = sum(v / math.log2(i + 2) for i, v in enumerate(rel))
                idcg = sum(1 / math.log2(i + 2) for i in range(min(m.k, len(truth))))
                nd.append(dcg / idcg)
                hit.append(1.0 if sum(rel) > 0 else 0.0)
            self.assertAlmostEqual(m.precision, np.mean(p), places=12)
            self.assertAlmostEqual(m.recall, np.mean(rc), places=12)
            self.assertAlmostEqual(m.ndcg, np.mean(nd), places=12)
            self.assertAlmostEqual(m.hit_rate, np.mean(hit), places=12)
            pm, rm = np.mean(p), np.mean(rc)
            self.assertAlmostEqual(m.f1, 2 * pm * rm / (pm + rm), places=12)
        kth = np.sort(neg)[::-1][19]
        self.assertAlmostEqual(r.hits[0].hits, np.mean(pos > kth), places=12)
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.stub.RankingMetrics,
                        ka.RankingMetricsRequest(topk_items=T(topk), test_edges=T(test), ks=[11]))


    # ---------------------------------------------------------------- T2V-NPR paths

    @staticmethod
    def circle_path(cx, cy, r):
        k = 0.5522847498307936
        pts = []
        for q in range(4):
            a0, a1 = q * math.pi / 2, (q + 1) * math.pi / 2
            s = np.array([cx + r * math.cos(a0), cy + r * math.sin(a0)])
            e = np.array([cx + r * math.cos(a1), cy + r * math.sin(a1)])
            pts += [s, s + k * r * np.array([-math.sin(a0), math.cos(a0)]),
                    e + k * r * np.array([math.sin(a1), -math.cos(a1)])]
        return np.array(pts)

    @staticmethod
    def polygon_path(v):
        v = np.asarray(v, dtype=float)
        out = []
        for a, b in zip(v, np.roll(v, -1, axis=0)):
            out += [a, a + (b - a) / 3, a + 2 * (b - a) / 3]
        return np.array(out)

    @staticmethod
    def pentagram(cx, cy, r):
        return AppliedKernelsTest.polygon_path(
            [(cx + r * math.cos(-math.pi / 2 + k * 4 * math.pi / 5),
              cy + r * math.sin(-math.pi / 2 + k * 4 * math.pi / 5)) for k in range(5)])

    @staticmethod
    def lemniscate(cx, cy, r, n=16):
        t = 2 * math.pi * (np.arange(n) + 0.3) / n
        v = np.stack([cx + 2 * r * np.sin(t), cy + r * np.sin(t) * np.cos(t)], axis=1)
        out = []
        for k in range(n):
            a, b, c, d = v[k - 1], v[k], v[(k + 1) % n], v[(k + 2) % n]
            out += [b, b + (c - a) / 6, c - (d - b) / 6]
        return np.array(out)

    @staticmethod
    def scene(paths, affine=None):
        offs = np.cumsum([0] + [len(p) for p in paths]).astype(np.int64)
        sc = ka.PathScene(points=T(np.concatenate(paths)), path_offsets=T(offs))
        if affine is not None:
            sc.affine.CopyFrom(T(np.asarray(affine, dtype=float)))
        return sc

    @staticmethod
    def bezier_samples(path, k=2000):
        n = len(path)
        t = np.linspace(0, 1, k, endpoint=False)[:, None]
        out = []
        for s in range(n // 3):
            p0, p1, p2, p3 = path[3 * s], path[3 * s + 1], path[3 * s + 2], path[(3 * s + 3) % n]
            out.append((1 - t) ** 3 * p0 + 3 * (1 - t) ** 2 * t * p1 + 3 * (1 - t) * t * t * p2
                       + t ** 3 * p3)
        return np.concatenate(out)

    def test_path_regularity_counts_area_and_xing(self):
        circle = self.circle_path(5, 6, 3)
        star = self.pentagram(0, 0, 10)
        eight = self.lemniscate(0, 0, 5)
        live = np.array([[0, 0], [1, 1], [2, 1], [0.5, 0], [0.3, -0.5], [0.1, -0.3]], float)
        for method in (ka.PATH_FAST, ka.PATH_REFERENCE):
            r = self.stub.PathRegularity(ka.PathRegularityRequest(
                scene=self.scene([circle, star, eight, live]), method=method))
            self.assertEqual([p.self_intersections for p in r.paths[:3]], [0, 5, 1])
            self.assertEqual(abs(r.paths[1].turning_number), 2)
            self.assertEqual(r.paths[2].turning_number, 0)
        # Area: dense-sample shoelace of the exact curve (independent of the server).
        d = self.bezier_samples(circle)
        shoelace = 0.5 * np.sum(d[:, 0] * np.roll(d[:, 1], -1) - d[:, 1] * np.roll(d[:, 0], -1))
        self.assertAlmostEqual(r.paths[0].signed_area, shoelace, delta=1e-6 * shoelace)
        length = np.sum(np.linalg.norm(np.roll(d, -1, axis=0) - d, axis=1))
        self.assertAlmostEqual(r.paths[0].perimeter, length, delta=1e-6 * length)
        # LIVE Xing loss, computed here from its definition.
        def sin(a, b):
            return (a[0] * b[1] - a[1] * b[0]) / (np.linalg.norm(a) * np.linalg.norm(b))
        segs = []
        for s in range(2):
            p = [live[3 * s], live[3 * s + 1], live[3 * s + 2], live[(3 * s + 3) % 6]]
            e1, e2, e3 = p[1] - p[0], p[2] - p[1], p[3] - p[2]
            segs.append(max(0, -sin(e1, e3)) if sin(e1, e2) >= 0 else max(0, sin(e1, e3)))
        self.assertAlmostEqual(r.paths[3].xing_loss, np.mean(segs), places=14)
        self.assertAlmostEqual(r.xing_loss_total,
                               1e-3 * np.mean([p.xing_loss for p in r.paths]), places=15)
        self.assertEqual(list(A(r.paths[1].crossings).shape), [5, 4])

    def test_rasterize_matches_numpy_winding_samples(self):
        # Straight-edged paths flatten exactly to their polygons, so a numpy winding-number
        # test at the same sample positions is an exact reference.
        star = self.pentagram(8.3, 7.9, 7.0)
        tri = self.polygon_path([(1.2, 1.5), (14.7, 3.1), (6.4, 13.8)])
        s = 3
        for rule, name in ((ka.PATH_NONZERO, "nonzero"), (ka.PATH_EVENODD, "evenodd")):
            r = self.stub.RasterizePaths(ka.RasterizePathsRequest(
                scene=self.scene([tri, star]), rgba=T(np.array([[1, 0, 0, 1], [0, 0, 1, 0.5]])),
                width=16, height=15, samples=s, fill_rule=rule))
            img = A(r.image)
            self.assertEqual(img.shape, (15, 16, 4))
            covs = []
            for path in (tri, star):
                poly = path[0::3]
                g = (np.arange(16 * s) + 0.5) / s
                h = (np.arange(15 * s) + 0.5) / s
                px, py = np.meshgrid(g, h)
                w = np.zeros_like(px, dtype=int)
                for a, b in zip(poly, np.roll(poly, -1, axis=0)):
                    cross = (b[0] - a[0]) * (py - a[1]) - (b[1] - a[1]) * (px - a[0])
                    w += ((a[1] <= py) & (b[1] > py) & (cross > 0)).astype(int)
                    w -= ((a[1] > py) & (b[1] <= py) & (cross < 0)).astype(int)
                inside = (w != 0) if name == "nonzero" else (w % 2 == 1)
                covs.append(inside.reshape(15, s, 16, s).sum(axis=(1, 3)) / (s * s))
            a_tri, a_star = covs[0].astype(np.float32), 0.5 * covs[1].astype(np.float32)
            np.testing.assert_allclose(img[..., 3], a_star + a_tri * (1 - a_star), atol=1e-6)
            np.testing.assert_allclose(img[..., 0], a_tri * (1 - a_star), atol=1e-6)
            np.testing.assert_allclose(img[..., 2], a_star, atol=1e-6)
            ref = self.stub.RasterizePaths(ka.RasterizePathsRequest(
                scene=self.scene([tri, star]), rgba=T(np.array([[1, 0, 0, 1], [0, 0, 1, 0.5]])),
                width=16, height=15, samples=s, fill_rule=rule, method=ka.PATH_REFERENCE))
            np.testing.assert_array_equal(A(ref.image), img)
            self.assertEqual(A(r.image_u8).dtype, np.uint8)

    def test_path_descriptor_invariance_and_retrieval(self):
        blob = np.array([[0, 0], [2, -1], [4, -0.5], [5, 1], [6, 3], [4, 4], [2, 4.5],
                         [0.5, 4], [-1, 3], [-1.5, 1.5], [-1.2, 0.5], [-0.6, 0.1]], float)
        star = self.pentagram(0, 0, 3)
        circle = self.circle_path(0, 0, 2)
        affine = [[0, 1, 0, 0], [0, 1, 0, 0], [0, 1, 0, 0], [0.9, 2.5, 30, -7]]
        r = self.stub.PathDescriptor(ka.PathDescriptorRequest(
            scene=self.scene([blob, star, circle, blob], affine), top_k=2))
        d = A(r.descriptors)
        self.assertEqual(d.shape, (4, 4 * 16 + 32 * 32))
        np.testing.assert_allclose(np.linalg.norm(d, axis=1), 1.0, atol=1e-12)
        self.assertGreater(d[0] @ d[3], 1 - 1e-9)
        self.assertEqual(A(r.neighbors)[0, 0], 3)
        self.assertEqual(A(r.neighbors)[3, 0], 0)
        np.testing.assert_allclose(A(r.similarities)[0, 0], d[0] @ d[3], rtol=1e-12)

    def test_path_bad_input(self):
        tri = self.polygon_path([(1, 1), (5, 1), (3, 4)])
        bad = ka.PathScene(points=T(tri), path_offsets=T(np.array([0, 8], np.int64)))
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.stub.PathRegularity,
                        ka.PathRegularityRequest(scene=bad))
        self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.RasterizePaths,
                        ka.RasterizePathsRequest(scene=self.scene([tri]), width=5000, height=10))
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.stub.RasterizePaths,
                        ka.RasterizePathsRequest(scene=self.scene([tri]), width=10, height=10,
                                                 flatten_tolerance=0.0))
        nan = tri.copy()
        nan[2, 0] = np.nan
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.stub.PathDescriptor,
                        ka.PathDescriptorRequest(scene=self.scene([nan])))


    # ---------------------------------------------------------------- INSR

    @staticmethod
    def siren_numpy(theta, x, hidden=20, sine_layers=3, omega=30.0):
        dims = [1] + [hidden] * sine_layers + [1]
        h, off = x[None, :], 0
        for l in range(len(dims) - 1):
            w = theta[off:off + dims[l] * dims[l + 1]].reshape(dims[l + 1], dims[l])
            off += dims[l] * dims[l + 1]
            b = theta[off:off + dims[l + 1]]
            off += dims[l + 1]
            z = w @ h + b[:, None]
            h = np.sin(omega * z) if l + 1 < len(dims) - 1 else z
        return h[0]

    def test_insr_advect_tracks_analytic_solution(self):
        r = self.stub.InsrAdvect1D(ka.InsrAdvect1DRequest(
            n_steps=2, n_samples=256, max_iters=150, lr=1e-3, mu=-0.5, sigma=0.3, seed=3,
            n_eval=201))
        self.assertEqual(r.num_params, 901)
        self.assertEqual([s.step for s in r.steps], [0, 1, 2])
        theta, x, u = A(r.theta), A(r.x_eval), A(r.u_eval)
        np.testing.assert_allclose(x, -2 + (np.arange(201) + 0.5) * 4 / 201, rtol=0, atol=1e-14)
        # The returned weights reproduce u_eval through an independent numpy forward pass.
        np.testing.assert_allclose(self.siren_numpy(theta, x), u, rtol=0, atol=1e-12)
        exact = np.exp(-(x - 0.25 * 2 * 0.05 + 0.5) ** 2 / (2 * 0.3 ** 2))
        self.assertAlmostEqual(r.steps[-1].l2_error, np.sqrt(np.mean((u - exact) ** 2)), places=12)
        self.assertLess(r.steps[-1].l2_error, 0.05)
        for s in r.steps:
            self.assertLess(s.fd_cn_l2_error, s.fd_upwind_l2_error + 1e-12)

    def test_insr_zero_state_stays_zero_and_bad_input(self):
        theta0 = np.random.default_rng(11).uniform(-0.1, 0.1, 901)
        theta0[-21:] = 0.0
        r = self.stub.InsrAdvect1D(ka.InsrAdvect1DRequest(
            n_steps=2, n_samples=128, max_iters=10, ic=ka.INSR_IC_ZERO, theta0=T(theta0),
            n_eval=50))
        self.assertTrue(np.all(A(r.u_eval) == 0.0))
        np.testing.assert_array_equal(A(r.theta), theta0)
        self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.InsrAdvect1D,
                        ka.InsrAdvect1DRequest(n_steps=1000))
        self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.InsrAdvect1D,
                        ka.InsrAdvect1DRequest(n_steps=240, n_samples=8192, max_iters=5000))
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.stub.InsrAdvect1D,
                        ka.InsrAdvect1DRequest(n_steps=1, max_iters=5, theta0=T(np.zeros(5))))
        self.assertCode(grpc.StatusCode.INVALID_ARGUMENT, self.stub.InsrAdvect1D,
                        ka.InsrAdvect1DRequest(n_steps=1, max_iters=5, dt=-1.0))

    # ------------------------------------------------------------ kernels_fuzz findings
    # (docs/fuzzing-kernels.md)
    def test_insr_work_cap_is_seconds_not_minutes(self):
        # 1·1500·8192·901 ≈ 1.1e10 units passed the old 2^34 cap and ran ~a minute of CPU.
        msg = self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.InsrAdvect1D,
                              ka.InsrAdvect1DRequest(n_steps=0, n_samples=8192, max_iters=1500))
        self.assertIn("max_iters", msg)
        self.assertIn("n_samples", msg)

    @staticmethod
    def circle(r, cx=0.0, cy=0.0):
        k = 0.5522847498307936
        pts = [[r, 0], [r, k * r], [k * r, r], [0, r], [-k * r, r], [-r, k * r], [-r, 0], [-r, -k * r],
               [-k * r, -r], [0, -r], [k * r, -r], [r, -k * r]]
        return np.array(pts, dtype=float) + [cx, cy]

    def test_path_coordinates_that_overflow_the_predicates_are_rejected(self):
        # A 1e133 control point passed validation; products of coordinate differences
        # overflowed, every orientation predicate took the exact path on inf/NaN terms and a
        # 15-point PathRegularity request ran for minutes.
        INV = grpc.StatusCode.INVALID_ARGUMENT
        far = self.circle(1.0)
        far[4] = [-4.4e17, 2.0e133]
        for call, req in [
                (self.stub.PathRegularity, ka.PathRegularityRequest(scene=self.scene([far]))),
                (self.stub.RasterizePaths, ka.RasterizePathsRequest(scene=self.scene([far]), width=8, height=8)),
                (self.stub.PathDescriptor, ka.PathDescriptorRequest(scene=self.scene([far])))]:
            self.assertIn("scene.points[4]", self.assertCode(INV, call, req))
        # The same through the per-path affine transform.
        self.assertIn("scene.affine", self.assertCode(INV, self.stub.PathRegularity, ka.PathRegularityRequest(
            scene=self.scene([self.circle(1.0)], affine=[[1e200, 0, 0, 1e200]]))))
        # Up to the bound the answer is ordinary.
        r = self.stub.PathRegularity(ka.PathRegularityRequest(scene=self.scene([self.circle(1e99)]),
                                                              flatten_tolerance=1e96))
        self.assertEqual(r.paths[0].self_intersections, 0)

    def test_path_crossing_work_is_capped(self):
        # A {4001/2000} star of straight cubic segments: every edge is nearly a diameter, so
        # the grid broad phase puts ~1,500 edges in every cell (≈ 5e9 candidate pairs: seconds
        # under the old code, minutes for larger stars). The work is counted before testing.
        n = 4001
        k = np.arange(n)
        ang = 2 * np.pi * ((k * ((n - 1) // 2)) % n) / n
        v = 100 * np.stack([np.cos(ang), np.sin(ang)], 1)
        w = np.roll(v, -1, axis=0)
        star = np.stack([v, v + (w - v) / 3, v + 2 * (w - v) / 3], 1).reshape(-1, 2)
        msg = self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.PathRegularity,
                              ka.PathRegularityRequest(scene=self.scene([star])))
        self.assertIn("scene.points", msg)
        self.assertIn("path 0", msg)
        # A long ordinary path stays well inside the budget (REFERENCE: ~4,900 vertices).
        r = self.stub.PathRegularity(ka.PathRegularityRequest(
            scene=self.scene([self.circle(2.0)]), flatten_tolerance=1e-6, method=ka.PATH_REFERENCE))
        self.assertEqual(r.paths[0].self_intersections, 0)

    def test_rasterize_scan_work_is_capped(self):
        # 300 canvas-sized paths at 4096² passed the per-canvas caps; the scanline composites
        # the whole canvas once per path (minutes of CPU with 2,000 paths).
        paths = [self.circle(3000.0, 2048.0, 2048.0) for _ in range(300)]
        msg = self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.RasterizePaths,
                              ka.RasterizePathsRequest(scene=self.scene(paths), width=4096, height=4096, samples=1))
        self.assertIn("width/height/samples", msg)

    def test_path_descriptor_work_is_capped(self):
        # 20 paths at resample 4096 / harmonics 2048 (≈ 7 s of CPU) and 3,000 paths with the
        # all-pairs top_k (≈ 23 s) passed the per-path caps.
        circles = [self.circle(1.0 + 0.01 * p) for p in range(20)]
        msg = self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.PathDescriptor,
                              ka.PathDescriptorRequest(scene=self.scene(circles), resample=4096, harmonics=2048, raster=0))
        self.assertIn("resample", msg)
        many = [self.circle(1.0 + 0.001 * p) for p in range(3000)]
        msg = self.assertCode(grpc.StatusCode.RESOURCE_EXHAUSTED, self.stub.PathDescriptor,
                              ka.PathDescriptorRequest(scene=self.scene(many), top_k=1))
        self.assertIn("top_k", msg)


if __name__ == "__main__":
    unittest.main()
