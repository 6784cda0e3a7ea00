use super::*;

fn paths(script: &str) -> Vec<(String, Context)> {
    scan(script)
        .into_iter()
        .map(|f| (f.path, f.context))
        .collect()
}

fn rw(script: &str) -> String {
    let found = scan(script);
    rewrite(script, &found, |p| {
        format!("R_{}", p.replace(['.', '-'], "_"))
    })
}

#[test]
fn dotted_references_are_found_in_every_form() {
    assert_eq!(
        paths("echo ${build.V} {{ a.b.C }} {{x.y.z.W}} ${p.belt.job.OUT}"),
        vec![
            ("build.V".into(), Context::Unquoted),
            ("a.b.C".into(), Context::Unquoted),
            ("x.y.z.W".into(), Context::Unquoted),
            ("p.belt.job.OUT".into(), Context::Unquoted),
        ]
    );
}

#[test]
fn plain_shell_is_left_byte_for_byte() {
    let script = "X=1; echo $X ${X} ${X:-d} ${#a[@]} $((1+2)) $(( 1 << 2 )) ${f%.txt} ${x-1.0} $$ \\${a.b}\n";
    assert_eq!(scan(script), vec![]);
    assert_eq!(rw(script), script);
}

#[test]
fn each_quoting_context_gets_its_own_expansion() {
    assert_eq!(rw("echo ${a.B}"), "echo \"${R_a_B}\"");
    assert_eq!(rw("echo \"v=${a.B}\""), "echo \"v=${R_a_B}\"");
    assert_eq!(rw("echo 'v=${a.B}'"), r#"echo 'v='"${R_a_B}"''"#);
    assert_eq!(rw("echo 'v={{ a.B }}'"), r#"echo 'v='"${R_a_B}"''"#);
    assert_eq!(rw(r"echo $'\t${a.B}'"), r#"echo $'\t'"${R_a_B}"$''"#);
}

#[test]
fn references_inside_substitutions_and_parameters_are_found() {
    assert_eq!(rw("x=$(echo ${a.B})"), "x=$(echo \"${R_a_B}\")");
    assert_eq!(rw("echo \"$(cat ${a.B})\""), "echo \"$(cat \"${R_a_B}\")\"");
    assert_eq!(rw("echo ${X:-${a.B}}"), "echo ${X:-\"${R_a_B}\"}");
    assert_eq!(rw("echo `cat ${a.B}`"), "echo `cat \"${R_a_B}\"`");
    assert_eq!(rw("echo $(( ${a.N} + 1 ))"), "echo $(( \"${R_a_N}\" + 1 ))");
}

#[test]
fn comments_are_not_searched() {
    assert_eq!(paths("# uses ${a.B}\necho hi # and {{ c.D }}\n"), vec![]);
    assert_eq!(
        paths("echo a#${a.B}"),
        vec![("a.B".into(), Context::Unquoted)]
    );
}

#[test]
fn heredocs_expand_unless_their_delimiter_is_quoted() {
    let script = "cat <<EOF\nv=${a.B} 'q'\nEOF\ncat <<'END'\nw=${c.D}\nEND\necho ${e.F}\n";
    assert_eq!(
        paths(script),
        vec![
            ("a.B".into(), Context::Double),
            ("c.D".into(), Context::QuotedHeredoc),
            ("e.F".into(), Context::Unquoted),
        ]
    );
    assert_eq!(
        rw(script),
        "cat <<EOF\nv=${R_a_B} 'q'\nEOF\ncat <<'END'\nw=${R_c_D}\nEND\necho \"${R_e_F}\"\n"
    );
}

#[test]
fn shapes_that_are_not_references_are_ignored() {
    assert_eq!(
        paths("echo ${a.1x} ${.a} ${a..b} {{ .Id }} {{ single }}"),
        vec![]
    );
    assert!(is_ref_path("ror-api-backend.build-gem.PACKER_FILE"));
    assert!(!is_ref_path("a.b-c"));
}

#[test]
fn unterminated_quotes_and_odd_bytes_do_not_panic() {
    for s in [
        "'",
        "\"",
        "$(",
        "${",
        "{{ a.B",
        "<<",
        "<<'",
        "cat <<EOF\n${a.B}",
        "é${a.B}ü",
        "\\",
    ] {
        let found = scan(s);
        let _ = rewrite(s, &found, |p| p.to_string());
    }
}
