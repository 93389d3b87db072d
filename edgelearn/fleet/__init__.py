"""Fleets' side of the numeric contract (docs/fleet.md, docs/numerics.md §6d):

    aggregate     federated averaging of integer parameters, and the seed each board learns with
    partition     the boards' shares of a dataset: iid, by-class, shifted
    reference     a federation replayed on the host with the C runtime, bit-exact with the boards

They import neither Flower nor firmware_host. The boards, Flower's processes, the ServerApp
and the ClientApp are in ``firmware_host.fleet``, on top of both, as firmware_host is on top
of edgelearn.
"""
