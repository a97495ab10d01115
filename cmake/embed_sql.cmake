# Turns every sql/*.sql file into a C++ string constant, so the SQL that runs on
# the server is reviewed as SQL and still ships inside the one binary.
# Invoked at build time with -DSQL_DIR=... -DOUT=...
file(GLOB sql_files "${SQL_DIR}/*.sql")
list(SORT sql_files)
set(body "// Generated from sql/*.sql by cmake/embed_sql.cmake; do not edit.\n")
string(APPEND body "#include \"pgtandem/sql_text.hpp\"\n\nnamespace pgtandem::sql {\n")
foreach(f IN LISTS sql_files)
  get_filename_component(name "${f}" NAME_WE)
  file(READ "${f}" text)
  string(APPEND body "const std::string_view k_${name} = R\"pgtandem_sql(${text})pgtandem_sql\";\n")
endforeach()
string(APPEND body "}  // namespace pgtandem::sql\n")
file(WRITE "${OUT}.tmp" "${body}")
file(COPY_FILE "${OUT}.tmp" "${OUT}" ONLY_IF_DIFFERENT)
