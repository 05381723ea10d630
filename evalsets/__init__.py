"""Generated inputs: the robustness evaluation sets, the benchmark's three inputs, fuzz mutants.

Everything here is a pure function of MNIST test images and seeds; it may use `recognition`,
which never imports it.
"""
