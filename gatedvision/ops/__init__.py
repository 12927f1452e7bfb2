"""Special kernels: a portable torch path and accelerated paths with the same signature."""
