"""A fingerprint of every row in the database, to assert that a refused request wrote nothing."""

from django.db import connection

# Rows a refused request may legitimately touch: the session store and login-failure records.
VOLATILE_TABLES = {
    "django_session",
    "axes_accessattempt",
    "axes_accessfailurelog",
    "axes_accesslog",
}


def db_snapshot() -> dict[str, str]:
    tables = sorted(set(connection.introspection.table_names()) - VOLATILE_TABLES)
    with connection.cursor() as cursor:
        fingerprint = {}
        for table in tables:
            quoted = connection.ops.quote_name(table)
            cursor.execute(
                f"SELECT count(*), md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                f"FROM {quoted} t"
            )
            count, digest = cursor.fetchone()
            fingerprint[table] = f"{count}:{digest}"
    return fingerprint
