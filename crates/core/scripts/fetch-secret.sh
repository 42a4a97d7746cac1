# fetch_secret: reads the notebook's secret from Parameter Store into $STATE_DIR/secret (mode
# 600, owned by the notebook user), replacing the file in one rename, and only when it changed.
# Jupyter's identity provider (jupyter_server_config.py) sees the new file at its next request
# and takes the new credential without a restart. The value is never printed, logged or passed
# on a command line. Sets SECRET_REPLACED=1 when the file changed. Needs SECRET_PARAM,
# AWS_REGION_NAME, STATE_DIR, NB_USER and die().
# shellcheck disable=SC2034 # SECRET_REPLACED: the health check reads it, the bootstrap does not
fetch_secret() {
  local new="$STATE_DIR/secret.new" err="$STATE_DIR/aws.err" msg value
  if ! aws ssm get-parameter --region "$AWS_REGION_NAME" --name "$SECRET_PARAM" --with-decryption \
      --query Parameter.Value --output text >"$new" 2>"$err"; then
    msg=$(grep -v '^[[:space:]]*$' "$err" | tail -n 1 | tr -d '\r' || true)
    rm -f "$new" "$err"
    die "cannot read parameter $SECRET_PARAM: ${msg:-aws exited non-zero}"
  fi
  rm -f "$err"
  value=$(cat "$new")
  if [ -z "$value" ] || [ "$value" = None ]; then
    rm -f "$new"
    die "parameter $SECRET_PARAM is empty"
  fi
  printf '%s' "$value" >"$new"
  unset value
  chmod 600 "$new"
  chown "$NB_USER:" "$new"
  SECRET_REPLACED=0
  if cmp -s "$new" "$STATE_DIR/secret"; then
    rm -f "$new"
  else
    mv -f "$new" "$STATE_DIR/secret"
    SECRET_REPLACED=1
  fi
}
