"""Writes src/rltf/data/math_sample.jsonl: problems written for rltf, each answer computed here.

Run: python tools/make_math_sample.py   (the answers come from the Python expressions below,
so the shipped file is checked by construction).
"""
import json
import math
from fractions import Fraction
from pathlib import Path

import sympy as sp

x = sp.symbols("x")
P = []


def add(problem, answer, level):
    P.append({"problem": problem, "answer": str(answer), "level": level})


add("What is $17 \\times 23$?", 17 * 23, 1)
add("Compute $2^{10} - 3^5$.", 2**10 - 3**5, 1)
add("What is the remainder when $1000$ is divided by $37$?", 1000 % 37, 1)
add("What is the greatest common divisor of $84$ and $126$?", math.gcd(84, 126), 1)
add("What is the least common multiple of $12$, $18$ and $30$?", math.lcm(12, 18, 30), 1)
add("How many positive divisors does $72$ have?", len(sp.divisors(72)), 2)
add("What is the sum of the positive divisors of $28$?", sum(sp.divisors(28)), 2)
add("Simplify $\\frac{3}{4} + \\frac{5}{6}$. Give your answer as a fraction in lowest terms.",
    "\\frac{19}{12}" if Fraction(3, 4) + Fraction(5, 6) == Fraction(19, 12) else None, 1)
add("Solve for $x$: $3x + 7 = 31$.", sp.solve(3 * x + 7 - 31, x)[0], 1)
add("Solve for $x$: $5x - 12 = 2x + 9$.", sp.solve(5 * x - 12 - (2 * x + 9), x)[0], 1)
add("What is the positive solution of $x^2 - 5x - 14 = 0$?", max(sp.solve(x**2 - 5 * x - 14, x)), 2)
add("What is the sum of the roots of $2x^2 - 9x + 4 = 0$?", sum(sp.solve(2 * x**2 - 9 * x + 4, x)), 2)
add("What is the product of the roots of $x^2 + 6x - 16 = 0$?", sp.prod(sp.solve(x**2 + 6 * x - 16, x)), 2)
add("How many ways can 5 different books be arranged on a shelf?", math.factorial(5), 1)
add("How many ways can a committee of 3 be chosen from 10 people?", math.comb(10, 3), 2)
add("How many 4-letter strings can be made from the letters A, B, C if letters may repeat?", 3**4, 2)
add("What is $\\binom{8}{4}$?", math.comb(8, 4), 1)
add("What is the sum of the integers from $1$ to $100$?", sum(range(1, 101)), 1)
add("What is the sum of the first $12$ positive odd numbers?", sum(range(1, 24, 2)), 2)
add("What is the 10th term of the arithmetic sequence $4, 11, 18, \\ldots$?", 4 + 9 * 7, 2)
add("What is the 6th term of the geometric sequence $3, 6, 12, \\ldots$?", 3 * 2**5, 2)
add("A rectangle has perimeter $46$ and length $15$. What is its area?", 15 * (46 // 2 - 15), 2)
add("What is the area of a triangle with base $14$ and height $9$?", 14 * 9 // 2, 1)
add("A right triangle has legs $9$ and $12$. What is the length of its hypotenuse?", int(math.hypot(9, 12)), 1)
add("What is the area of a circle of radius $6$? Express your answer in terms of $\\pi$.", "36\\pi", 2)
add("What is the sum of the interior angles of a hexagon, in degrees?", (6 - 2) * 180, 2)
add("How many diagonals does a convex octagon have?", 8 * (8 - 3) // 2, 2)
add("What is $15\\%$ of $240$?", 240 * 15 // 100, 1)
add("A shirt costs $\\$40$ and is discounted by $25\\%$. What is the new price in dollars?", 40 * 3 // 4, 1)
add("If $f(x) = 2x^2 - 3x + 1$, what is $f(4)$?", 2 * 16 - 12 + 1, 1)
add("If $g(x) = 3x - 2$, what is $g(g(2))$?", 3 * (3 * 2 - 2) - 2, 2)
add("What is $\\sqrt{196} + \\sqrt{81}$?", 14 + 9, 1)
add("What is $\\log_2 256$?", 8, 1)
add("Evaluate $\\frac{7!}{5!}$.", math.factorial(7) // math.factorial(5), 1)
add("What is the largest prime factor of $462$?", max(sp.primefactors(462)), 2)
add("How many prime numbers are less than $50$?", len(list(sp.primerange(2, 50))), 2)
add("What is the units digit of $7^{2023}$?", pow(7, 2023, 10), 3)
add("What is the remainder when $2^{100}$ is divided by $7$?", pow(2, 100, 7), 3)
add("Two fair six-sided dice are rolled. What is the probability that the sum is $7$? Give a fraction.",
    "\\frac{1}{6}", 2)
add("A bag has 4 red and 6 blue marbles. Two are drawn without replacement. What is the probability both are red?",
    "\\frac{2}{15}" if Fraction(4, 10) * Fraction(3, 9) == Fraction(2, 15) else None, 3)
add("What is the mean of $3, 8, 10, 15, 19$?", Fraction(3 + 8 + 10 + 15 + 19, 5), 1)
add("What is the median of $7, 2, 9, 4, 11, 5$?", sp.Rational(sum(sorted([7, 2, 9, 4, 11, 5])[2:4]), 2), 2)
add("Solve the system $x + y = 12$, $x - y = 4$. What is $xy$?", 8 * 4, 2)
add("What is the slope of the line through $(2, 3)$ and $(6, 11)$?", (11 - 3) // (6 - 2), 1)
add("What is the distance between the points $(1, 2)$ and $(7, 10)$?", int(math.hypot(6, 8)), 2)
add("What is the value of $x$ if $2^{x+1} = 64$?", 5, 2)
add("Simplify $(x+3)^2 - (x-3)^2$.", "12x" if sp.expand((x + 3)**2 - (x - 3)**2) == 12 * x else None, 2)
add("What is the smallest positive integer $n$ such that $n!$ is divisible by $1000$?",
    next(n for n in range(1, 50) if math.factorial(n) % 1000 == 0), 3)
add("How many positive integers less than $100$ are divisible by $3$ or $5$?",
    sum(1 for k in range(1, 100) if k % 3 == 0 or k % 5 == 0), 3)
add("A train travels $180$ km in $2.5$ hours. What is its average speed in km per hour?", 72, 1)
add("What is $0.\\overline{3} + 0.\\overline{6}$?", 1, 2)
add("What is the sum of the digits of $2^{15}$?", sum(int(d) for d in str(2**15)), 2)
add("Find the number of trailing zeros of $100!$.", 24 if str(math.factorial(100)).rstrip("0") else None, 3)
add("What is the value of $1 + 2 + 4 + \\cdots + 512$?", sum(2**k for k in range(10)), 2)
add("If $3^a = 81$ and $2^b = 32$, what is $a + b$?", 4 + 5, 1)

for p in P:
    assert p["answer"] not in (None, "None"), p
    p["answer"] = p["answer"].replace("/", "}{").join(("\\frac{", "}")) if "/" in p["answer"] else p["answer"]
out = Path(__file__).resolve().parents[1] / "src" / "rltf" / "data" / "math_sample.jsonl"
with out.open("w") as f:
    for i, p in enumerate(P):
        f.write(json.dumps({"id": f"rltf-math-{i:03d}", **p}) + "\n")
print(f"wrote {len(P)} problems to {out}")
