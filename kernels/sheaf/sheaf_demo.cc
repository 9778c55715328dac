// Sheaf4Rec demo: builds the deterministic planted-genre interaction graph, diffuses random
// embeddings with unit restriction maps (the LightGCN special case, no training), and
// prints a few users' top-10 recommendations and the ranking metrics on the held-out 20%,
// next to the undiffused random embeddings and a popularity baseline.
//   sheaf_demo [num_users num_items genres per_user seed layers dim]   (defaults 300 200 5 20 42 10 128)
#include <fmt/format.h>

#include <cstdlib>
#include <vector>

#include "common/rng.h"
#include "kernels/sheaf/sheaf.h"

using namespace chamferdb::sheaf;

int main(int argc, char** argv) {
  const int32_t users = argc > 1 ? std::atoi(argv[1]) : 300;
  const int32_t items = argc > 2 ? std::atoi(argv[2]) : 200;
  const int32_t genres = argc > 3 ? std::atoi(argv[3]) : 5;
  const int32_t per_user = argc > 4 ? std::atoi(argv[4]) : 20;
  const uint64_t seed = argc > 5 ? std::strtoull(argv[5], nullptr, 10) : 42;
  const int layers = argc > 6 ? std::atoi(argv[6]) : 10;
  const int d = argc > 7 ? std::atoi(argv[7]) : 128;
  if (users < 1 || items < 1 || genres < 1 || per_user < 1) {
    fmt::print(stderr, "usage: sheaf_demo [num_users num_items genres per_user seed]\n");
    return 2;
  }
  const DemoGraph g = MakeDemoGraph(users, items, genres, per_user, seed);

  DiffusionParams p;
  p.num_users = users;
  p.num_items = items;
  p.dim = d;
  p.edges = g.train;
  p.unit_maps = true;
  for (int l = 0; l < layers; ++l) {
    SheafLayer layer;
    layer.W.assign(d * d, 0.0);
    for (int j = 0; j < d; ++j) layer.W[j * d + j] = 1.0;
    layer.b.assign(d, 0.0);
    p.layers.push_back(layer);
  }
  chamferdb::Rng rng(seed + 1);
  std::vector<double> x0((users + items) * d);
  for (double& v : x0) v = 0.1 * rng.Normal();
  if (auto st = Validate(p, x0); !st.ok()) {
    fmt::print(stderr, "{}\n", std::string(st.message()));
    return 1;
  }
  const DiffusionResult r = DiffuseFast(p, x0);
  const UserItems train = UserItems::FromPairs(users, g.train);
  const UserItems test = UserItems::FromPairs(users, g.test);
  auto recommend = [&](const std::vector<double>& h) {
    const std::vector<double> hu(h.begin(), h.begin() + static_cast<size_t>(users) * d);
    const std::vector<double> hi(h.begin() + static_cast<size_t>(users) * d, h.end());
    return RecommendFast(hu, hi, users, items, d, train, 10, MaskMode::kNegInf);
  };
  const TopK diffused = recommend(r.h), random = recommend(x0);
  // Popularity baseline: every user scores items by training degree.
  std::vector<double> pop_u(users, 1.0), pop_i(items, 0.0);
  for (const Interaction& e : g.train) pop_i[e.item] += 1.0;
  const TopK popular = RecommendFast(pop_u, pop_i, users, items, 1, train, 10, MaskMode::kNegInf);

  fmt::print("demo graph: {} users, {} items, {} genres, {} train / {} test interactions\n",
             users, items, genres, g.train.size(), g.test.size());
  for (int32_t u = 0; u < std::min(users, 5); ++u) {
    fmt::print("user {:3d} (genre {}): ", u, g.user_genre[u]);
    int in_genre = 0;
    for (int rnk = 0; rnk < 10; ++rnk) {
      const int32_t item = diffused.items[u * 10 + rnk];
      fmt::print("{}{}", item, rnk < 9 ? "," : "");
      in_genre += item >= 0 && g.item_genre[item] == g.user_genre[u];
    }
    fmt::print("  ({}/10 in the user's genre)\n", in_genre);
  }
  fmt::print("{:<22}{:>10}{:>10}{:>10}{:>10}\n", "@10", "F1", "NDCG", "Recall", "Hit");
  for (auto [name, t] : {std::pair{"sheaf diffusion", &diffused}, {"random embeddings", &random},
                         {"popularity", &popular}}) {
    const RankingAtK m = RankingMetrics(*t, test, {10})[0];
    fmt::print("{:<22}{:>10.4f}{:>10.4f}{:>10.4f}{:>10.4f}\n", name, m.f1, m.ndcg, m.recall,
               m.hit_rate);
  }
  return 0;
}
