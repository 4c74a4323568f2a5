"""Train a router on the bundled data, route a few prompts under three preferences.

    python examples/quickstart.py
"""

import polyroute as pr

outcomes = pr.load_bundled()
train, test = pr.train_test_split(outcomes, test_size=0.2, random_state=0)
pipe = pr.Pipeline("knn").fit(train, progress=True)

prompts = [
    "What is the capital of Australia?",
    "Write a Python function that returns the n-th Fibonacci number.",
    "Find all real x such that x^4 - 5x^2 + 4 = 0.",
]
estimates = pipe.estimate(prompts)
for label, policy in [("best quality", pr.TradeoffPolicy(lam=0.0)),
                      ("balanced", pr.TradeoffPolicy(lam=0.3)),
                      ("floor 0.6", pr.FloorPolicy(0.6))]:
    for prompt, decision in zip(prompts, pr.decisions(estimates, policy), strict=True):
        print(f"{label:>12}: {decision.model:<34} {prompt[:50]}")
