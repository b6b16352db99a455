# Ordinary least squares: fits y = intercept + sum(weight_f * f) over the
# columns named in `features` (comma-separated) of a CSV with a header, by
# solving the normal equations with Gaussian elimination. Prints the model:
#   intercept W0
#   weight NAME W
BEGIN { FS = ","; n = split(features, wanted, ",") }
NR == 1 {
  for (i = 1; i <= NF; i++) column[$i] = i
  for (j = 1; j <= n; j++) if (!(wanted[j] in column)) { print "no column " wanted[j] > "/dev/stderr"; bad = 1; exit 1 }
  if (!("y" in column)) { print "no column y" > "/dev/stderr"; bad = 1; exit 1 }
  next
}
{
  x[0] = 1
  for (j = 1; j <= n; j++) x[j] = $column[wanted[j]]
  for (a = 0; a <= n; a++) {
    b_[a] += x[a] * $column["y"]
    for (b = 0; b <= n; b++) m[a, b] += x[a] * x[b]
  }
  rows++
}
END {
  if (bad) exit 1
  if (rows <= n) { print "too few rows to fit " n " features" > "/dev/stderr"; exit 1 }
  for (p = 0; p <= n; p++) {
    best = p
    for (r = p + 1; r <= n; r++) if (abs(m[r, p]) > abs(m[best, p])) best = r
    if (abs(m[best, p]) < 1e-12) { print "the features are collinear" > "/dev/stderr"; exit 1 }
    for (c = 0; c <= n; c++) { t = m[p, c]; m[p, c] = m[best, c]; m[best, c] = t }
    t = b_[p]; b_[p] = b_[best]; b_[best] = t
    for (r = 0; r <= n; r++) {
      if (r == p) continue
      f = m[r, p] / m[p, p]
      for (c = 0; c <= n; c++) m[r, c] -= f * m[p, c]
      b_[r] -= f * b_[p]
    }
  }
  printf "intercept %.6f\n", b_[0] / m[0, 0]
  for (j = 1; j <= n; j++) printf "weight %s %.6f\n", wanted[j], b_[j] / m[j, j]
}
function abs(v) { return v < 0 ? -v : v }
