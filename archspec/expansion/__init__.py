"""The expander's parts, one small unit each, as torch.fx's passes: the shared state of one
expansion (``state``), namespaces (``scope``), lists of items (``items``), primitive layers
(``primitives``), block calls (``blocks``) and the structures repeat, parallel and residual
(``structures``). ``archspec.expand`` runs them over a whole spec.
"""
