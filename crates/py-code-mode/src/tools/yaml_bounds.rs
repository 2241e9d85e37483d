//! Bounds on tool YAML checked before the parser sees it.
//!
//! libyaml (under `yaml_serde`) is quadratic in the nesting of flow
//! collections: 195 KiB of `[` took over three minutes to refuse, while start-up
//! waited on it. A cheap scan of the text refuses such files first.
//!
//! The scan over-estimates the depth rather than under-estimate it: every
//! `[`/`{` counts, in quotes and comments too; a `]`/`}` inside a quoted
//! string or a comment only closes what was opened inside that same string or
//! comment, so brackets in a description can never hide real nesting.

/// Largest tool definition read: real ones are a few KiB, and the parser's
/// cost grows faster than the text.
pub const MAX_TOOL_YAML: usize = 256 * 1024;

/// Deepest nesting (block indentation plus flow brackets) a definition may
/// have; real ones stay under ten.
pub const MAX_YAML_DEPTH: usize = 64;

/// Why a text was refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum YamlBoundsError {
    TooLarge { bytes: usize },
    TooDeep { line: usize },
}

impl std::fmt::Display for YamlBoundsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooLarge { bytes } => write!(
                f,
                "the definition is {bytes} bytes; at most {MAX_TOOL_YAML} are read"
            ),
            Self::TooDeep { line } => write!(
                f,
                "nesting deeper than {MAX_YAML_DEPTH} levels at line {line}"
            ),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Region {
    Code,
    Single,
    Double,
}

/// Checks size and nesting depth of a YAML text.
pub fn check(text: &str) -> Result<(), YamlBoundsError> {
    if text.len() > MAX_TOOL_YAML {
        return Err(YamlBoundsError::TooLarge { bytes: text.len() });
    }
    let mut indents: Vec<usize> = Vec::new();
    let mut flow: usize = 0;
    let mut region = Region::Code;
    // The flow depth when the current string began: its closers stop there.
    let mut floor: usize = 0;
    for (index, line) in text.lines().enumerate() {
        let too_deep = YamlBoundsError::TooDeep { line: index + 1 };
        let body = line.trim_start_matches([' ', '\t']);
        let indent = line.len() - body.len();
        if region == Region::Code && flow == 0 && !body.is_empty() && !body.starts_with('#') {
            while indents.last().is_some_and(|&top| top > indent) {
                indents.pop();
            }
            if indents.last().is_none_or(|&top| top < indent) {
                indents.push(indent);
            }
        }
        // `- - - x` nests one level per dash.
        let dashes = body
            .as_bytes()
            .chunks(2)
            .take_while(|c| matches!(c, [b'-' | b'?', b' ' | b'\t'] | [b'-' | b'?']))
            .count();
        let block = indents.len() + dashes;
        if block + flow > MAX_YAML_DEPTH {
            return Err(too_deep);
        }
        let mut previous = None::<char>;
        let mut chars = body.chars().peekable();
        let mut comment_floor = None::<usize>;
        while let Some(c) = chars.next() {
            match region {
                Region::Single if c == '\'' => {
                    if chars.peek() == Some(&'\'') {
                        chars.next();
                    } else {
                        region = Region::Code;
                    }
                }
                Region::Double if c == '\\' => {
                    chars.next();
                }
                Region::Double if c == '"' => region = Region::Code,
                Region::Code if comment_floor.is_none() => match c {
                    '#' if previous.is_none_or(char::is_whitespace) => comment_floor = Some(flow),
                    '\'' => {
                        region = Region::Single;
                        floor = flow;
                    }
                    '"' => {
                        region = Region::Double;
                        floor = flow;
                    }
                    '[' | '{' => flow += 1,
                    ']' | '}' => flow = flow.saturating_sub(1),
                    _ => {}
                },
                // In a string or a comment: openers count, closers only close
                // what the same string or comment opened.
                _ => match c {
                    '[' | '{' => flow += 1,
                    ']' | '}' => {
                        let floor = comment_floor.unwrap_or(floor);
                        if flow > floor {
                            flow -= 1;
                        }
                    }
                    _ => {}
                },
            }
            if block + flow > MAX_YAML_DEPTH {
                return Err(too_deep);
            }
            previous = Some(c);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_definitions_pass() {
        let yaml = "name: curl # comment [\nschema:\n  options:\n    header: {type: array, short: H}\n  positional:\n    - {name: url, required: true}\nrecipes:\n  get:\n    description: \"GET ] ]] quietly [x]\"\n    preset: {silent: true}\ntags: [a, 'b]', \"c}\"]\n";
        assert_eq!(check(yaml), Ok(()));
    }

    #[test]
    fn deep_flow_block_and_dash_nesting_are_refused() {
        let flow = format!("name: x\nargs: {}\n", "[".repeat(100_000));
        assert_eq!(check(&flow), Err(YamlBoundsError::TooDeep { line: 2 }));
        let mut block = String::from("name: x\n");
        for i in 0..100 {
            block.push_str(&" ".repeat(i));
            block.push_str("a:\n");
        }
        assert!(matches!(
            check(&block),
            Err(YamlBoundsError::TooDeep { .. })
        ));
        let dashes = format!("tags:\n{}x\n", "- ".repeat(100));
        assert!(matches!(
            check(&dashes),
            Err(YamlBoundsError::TooDeep { .. })
        ));
        // One bracket per line.
        let lines = format!("name: x\nargs:\n{}", "[\n".repeat(100));
        assert!(matches!(
            check(&lines),
            Err(YamlBoundsError::TooDeep { .. })
        ));
    }

    #[test]
    fn closers_in_strings_and_comments_cannot_hide_nesting() {
        for hide in ["\"]]]]]]]]]]\"", "']]]]]]]]]]'", "# ]]]]]]]]]]\n"] {
            let yaml = format!("a: {}{hide}{}\n", "[".repeat(40), "[".repeat(40));
            assert!(
                matches!(check(&yaml), Err(YamlBoundsError::TooDeep { .. })),
                "{hide}"
            );
        }
    }

    #[test]
    fn oversize_text_is_refused() {
        let big = "#".repeat(MAX_TOOL_YAML + 1);
        assert_eq!(
            check(&big),
            Err(YamlBoundsError::TooLarge {
                bytes: MAX_TOOL_YAML + 1
            })
        );
    }
}
