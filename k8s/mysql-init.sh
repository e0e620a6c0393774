#!/bin/bash
# Runs once, when a pod's MySQL data volume is initialized (the official
# image sources /docker-entrypoint-initdb.d/*.sh, after creating the user
# 'taskraft'@'%' from MYSQL_USER/MYSQL_PASSWORD). MYSQL_DATABASE is
# deliberately not set: the migration account creates the database, with the
# character set and collation it wants.
#
# Two accounts, both on the one database `taskraft` and nothing else:
#   taskraft          the node: reads and writes rows (SELECT, INSERT, UPDATE,
#                     DELETE); no CREATE, DROP, ALTER or TRIGGER.
#   taskraft_migrate  the `migrate` init container: everything on it
#                     (creating it, tables, indexes, triggers).
# The names must match the URLs in statefulset.yaml.
docker_process_sql --database=mysql <<-EOSQL
	CREATE USER IF NOT EXISTS 'taskraft_migrate'@'%' IDENTIFIED BY '${MYSQL_MIGRATE_PASSWORD}';
	GRANT ALL PRIVILEGES ON \`taskraft\`.* TO 'taskraft_migrate'@'%';
	GRANT SELECT, INSERT, UPDATE, DELETE ON \`taskraft\`.* TO 'taskraft'@'%';
EOSQL
