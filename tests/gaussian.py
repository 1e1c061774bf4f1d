"""A prior with a known density, shared by the evaluation and separation tests."""

import math

import torch


class Gauss(torch.nn.Module):
    """iid N(mu, s^2) per sample; ``log_prob`` sums over time like the real priors."""

    def __init__(self, mu, s):
        super().__init__()
        self.mu, self.s = torch.nn.Parameter(torch.tensor(float(mu))), float(s)

    def log_prob(self, x):
        return (-0.5 * ((x - self.mu) / self.s) ** 2 - math.log(self.s) - 0.5 * math.log(2 * math.pi)).sum(1)
