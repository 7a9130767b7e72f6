//! The README's "Securing tallyd" example, as an operator would paste it: the
//! tallyd config and the web config both load, and the web config's hash is of
//! the password the text gives.

use tallyd::config::{parse, parse_web_file};

/// The fenced YAML block of the README whose first line is `first_line`.
fn block(first_line: &str) -> String {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let start = readme
        .find(&format!("```yaml\n{first_line}\n"))
        .unwrap_or_else(|| panic!("the README has a yaml block starting {first_line:?}"));
    let body = &readme[start + "```yaml\n".len()..];
    body[..body.find("```").unwrap()].to_owned()
}

#[test]
fn the_securing_example_loads_as_written() {
    let config = parse(&block("# tallyd.yaml"), "README").expect("the tallyd.yaml example");
    assert_eq!(
        config.web.config_file.as_deref(),
        Some(std::path::Path::new("/etc/tallyd/web.yml"))
    );
    assert!(config.web.enable_lifecycle);
    assert_eq!(config.limits.max_connections.get(), 1024);
    let web =
        parse_web_file(&block("# /etc/tallyd/web.yml"), "README").expect("the web.yml example");
    let hash = &web.basic_auth_users["prometheus"];
    assert!(
        bcrypt::verify("change-me", hash).unwrap(),
        "the example hash is of the password the README gives"
    );
    assert!(web.tls_server_config.unwrap().client_auth_type.requires());
}
