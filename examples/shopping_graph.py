"""The shopping example as a computational graph: forward, then backward, step by step.

You buy 2 apples at 100 each and 3 oranges at 150 each, and pay 10 % tax:

    total = (apple_price · apple_count + orange_price · orange_count) · tax = 715

How much does the total change when each input changes a little? Backpropagation
answers all five questions in one backward pass, node by node, multiplying the
gradient that arrives from above (upstream) by the node's local derivative.

Run it: python examples/shopping_graph.py   (draws shopping_graph.svg if Graphviz is
installed, and writes shopping_graph.dot otherwise).
"""

import sys
from pathlib import Path

try:
    import chainrule
except ImportError:  # run from a source checkout without installing: use the repo's copy
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    import chainrule

from chainrule import Tensor
from chainrule.explain import explain
from chainrule.viz import render

print(f"chainrule {chainrule.__version__}: the shopping example\n")

# ---- the inputs: leaves of the graph. requires_grad=True asks for their gradients.
apple_price = Tensor(100.0, requires_grad=True, name="apple_price")
apple_count = Tensor(2.0, requires_grad=True, name="apple_count")
orange_price = Tensor(150.0, requires_grad=True, name="orange_price")
orange_count = Tensor(3.0, requires_grad=True, name="orange_count")
tax = Tensor(1.1, requires_grad=True, name="tax")

# ---- the forward pass: every operation adds one node to the graph.
apple_total = apple_price * apple_count  # 200
orange_total = orange_price * orange_count  # 450
subtotal = apple_total + orange_total  # 650
total = subtotal * tax  # 715
apple_total.name, orange_total.name = "apple_total", "orange_total"
subtotal.name, total.name = "subtotal", "total"

# ---- the backward pass, recorded: the same as total.backward(), step by step.
trace = explain(total)  # or: trace = total.backward(trace=True)
print(trace)  # the forward values, then each node of the backward pass

# The gradients landed in .grad, as after any backward():
print(f"\nd total/d apple_price = {apple_price.grad.item():.4g}  (2 apples × 1.1 tax)")
print(f"d total/d tax         = {tax.grad.item():.4g}  (the subtotal)")

# ---- the picture: values in the boxes, gradients in red along the edges.
written = render(trace, "shopping_graph.svg")
print(f"\nthe graph: {written}")
