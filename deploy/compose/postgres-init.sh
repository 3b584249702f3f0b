#!/usr/bin/env bash
# One role and one database per service, each role owning only its own database (a service never
# reads another's). The postgres image runs this once, when its data volume is first initialised
# (/docker-entrypoint-initdb.d); to run it again, remove the volume: `docker compose down -v`.
#
#   GATEHOUSE_DATABASES        the databases, e.g. "gatehouse_auth gatehouse_billing"
#   POSTGRES_<NAME>_PASSWORD   the password of role gatehouse_<name>, e.g. POSTGRES_AUTH_PASSWORD
#
# The body runs in a subshell, so its shell options stay its own when the image sources this file
# (it does so when the file is not executable).

create_gatehouse_databases() (
    set -euo pipefail
    for database in ${GATEHOUSE_DATABASES:?list the databases to create in GATEHOUSE_DATABASES}; do
        name="${database#gatehouse_}"
        password_variable="POSTGRES_${name^^}_PASSWORD"
        if [[ -z "${!password_variable:-}" ]]; then
            echo "postgres-init: set ${password_variable} (the password of role ${database})" >&2
            exit 1
        fi
        echo "postgres-init: role and database ${database}"
        # psql quotes :"name" as an identifier and :'password' as a literal: any password is safe.
        psql --no-psqlrc --set=ON_ERROR_STOP=1 --username="${POSTGRES_USER:-postgres}" --dbname=postgres \
            --set=name="${database}" --set=password="${!password_variable}" <<'SQL'
CREATE ROLE :"name" LOGIN PASSWORD :'password';
CREATE DATABASE :"name" OWNER :"name";
REVOKE ALL ON DATABASE :"name" FROM PUBLIC;
SQL
    done
)

create_gatehouse_databases
