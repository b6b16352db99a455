# Scores a model (first file, as train.awk prints it) on a CSV with a header
# (second file): prints a JSON object with r2 and rmse.
FNR == NR {
  if ($1 == "intercept") intercept = $2
  else if ($1 == "weight") { weights[$2] = $3 }
  next
}
FNR == 1 { FS = ","; $0 = $0; for (i = 1; i <= NF; i++) column[$i] = i; next }
{
  predicted = intercept
  for (name in weights) predicted += weights[name] * $column[name]
  actual = $column["y"]
  error += (actual - predicted) ^ 2
  sum += actual; squares += actual ^ 2; rows++
}
END {
  mean = sum / rows
  total = squares - rows * mean ^ 2
  printf "{\"r2\": %.4f, \"rmse\": %.4f, \"rows\": %d}\n", 1 - error / total, sqrt(error / rows), rows
}
