//! The quota grammar: a small lexer and a recursive-descent parser that
//! reports the segment and byte span of whatever it refuses.

use std::ops::Range;
use std::time::Duration;

use super::error::{QuotaError, QuotaParseError, QuotaParseErrorKind as Kind};
use super::unit::Unit;
use super::{Quota, MAX_QUOTA_TEXT_LEN};

const EXPECTED_AFTER_COUNT: &str = "\"/\", \"per\" or \"concurrent\"";
const EXPECTED_AFTER_SEPARATOR: &str = "a number or a unit";
const EXPECTED_UNIT: &str = "a unit";
const EXPECTED_AFTER_RATE: &str = "\"burst\" or the end of the quota";
const EXPECTED_END: &str = "the end of the quota";

/// Parses text holding exactly one quota.
pub(super) fn parse_quota(input: &str) -> Result<Quota, QuotaParseError> {
    check_text(input)?;
    parse_segment(input, 0, 0..input.len())
}

/// Parses `;`-separated quotas; a single trailing `;` is tolerated.
pub(super) fn parse_quotas(input: &str) -> Result<Vec<Quota>, QuotaParseError> {
    check_text(input)?;
    let segments = input.split(';').count();
    let mut quotas = Vec::with_capacity(segments);
    let mut start: usize = 0;
    for (index, segment) in input.split(';').enumerate() {
        let range = start..start.saturating_add(segment.len());
        start = range.end.saturating_add(1);
        let blank = segment.bytes().all(|b| b.is_ascii_whitespace());
        if blank && index > 0 && index + 1 == segments {
            break;
        }
        quotas.push(parse_segment(input, index, range)?);
    }
    Ok(quotas)
}

/// Refuses text that is too long or not ASCII, before any parsing.
fn check_text(input: &str) -> Result<(), QuotaParseError> {
    if input.len() > MAX_QUOTA_TEXT_LEN {
        return Err(QuotaParseError::new(
            input,
            0,
            0..input.len(),
            Kind::TooLong {
                len: input.len(),
                max: MAX_QUOTA_TEXT_LEN,
            },
        ));
    }
    if let Some((at, character)) = input.char_indices().find(|(_, c)| !c.is_ascii()) {
        let before = input.get(..at).unwrap_or("");
        let segment = before.bytes().filter(|&b| b == b';').count();
        return Err(QuotaParseError::new(
            input,
            segment,
            at..at.saturating_add(character.len_utf8()),
            Kind::NotAscii { character },
        ));
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TokenKind {
    /// A run of ASCII digits.
    Number,
    /// A run of ASCII letters.
    Word,
    /// `/`.
    Slash,
    /// Any other single character.
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Token {
    kind: TokenKind,
    start: usize,
    end: usize,
}

impl Token {
    fn span(self) -> Range<usize> {
        self.start..self.end
    }
}

/// Splits one segment of the input into tokens, skipping ASCII whitespace.
struct Lexer<'a> {
    input: &'a str,
    pos: usize,
    end: usize,
    /// End of the last token returned: where a missing token is reported.
    last_end: usize,
}

impl<'a> Lexer<'a> {
    fn new(input: &'a str, range: Range<usize>) -> Self {
        Lexer {
            input,
            pos: range.start,
            end: range.end.min(input.len()),
            last_end: range.start,
        }
    }

    fn byte(&self, at: usize) -> Option<u8> {
        if at < self.end {
            self.input.as_bytes().get(at).copied()
        } else {
            None
        }
    }

    fn next_token(&mut self) -> Option<Token> {
        while self.byte(self.pos).is_some_and(|b| b.is_ascii_whitespace()) {
            self.pos += 1;
        }
        let start = self.pos;
        let first = self.byte(start)?;
        let (kind, end) = if first.is_ascii_digit() {
            (
                TokenKind::Number,
                self.run_end(start, |b| b.is_ascii_digit()),
            )
        } else if first.is_ascii_alphabetic() {
            (
                TokenKind::Word,
                self.run_end(start, |b| b.is_ascii_alphabetic()),
            )
        } else {
            let width = self
                .input
                .get(start..)
                .and_then(|rest| rest.chars().next())
                .map_or(1, char::len_utf8);
            let kind = if first == b'/' {
                TokenKind::Slash
            } else {
                TokenKind::Other
            };
            (kind, start.saturating_add(width))
        };
        self.pos = end;
        self.last_end = end;
        Some(Token { kind, start, end })
    }

    fn run_end(&self, start: usize, accept: impl Fn(u8) -> bool) -> usize {
        let mut end = start;
        while self.byte(end).is_some_and(&accept) {
            end += 1;
        }
        end
    }

    /// An empty span just after the last token.
    fn missing(&self) -> Range<usize> {
        self.last_end..self.last_end
    }

    fn text(&self, token: Token) -> &'a str {
        self.input.get(token.start..token.end).unwrap_or("")
    }

    fn is_word(&self, token: Token, word: &str) -> bool {
        token.kind == TokenKind::Word && self.text(token).eq_ignore_ascii_case(word)
    }
}

/// Reads the decimal value of a number token, `None` if it overflows `u64`.
fn number_value(text: &str) -> Option<u64> {
    text.chars().try_fold(0u64, |value, c| {
        value
            .checked_mul(10)?
            .checked_add(u64::from(c.to_digit(10)?))
    })
}

/// Parses the segment `range` of `input` (index `segment`) as one quota.
fn parse_segment(
    input: &str,
    segment: usize,
    range: Range<usize>,
) -> Result<Quota, QuotaParseError> {
    let error = |span: Range<usize>, kind: Kind| QuotaParseError::new(input, segment, span, kind);
    let mut lexer = Lexer::new(input, range.clone());

    let Some(count_token) = lexer.next_token() else {
        return Err(error(range, Kind::Empty));
    };
    let count = number(&lexer, count_token).map_err(|kind| error(count_token.span(), kind))?;

    let Some(separator) = lexer.next_token() else {
        return Err(error(
            lexer.missing(),
            Kind::UnexpectedToken {
                found: String::new(),
                expected: EXPECTED_AFTER_COUNT,
            },
        ));
    };
    if lexer.is_word(separator, "concurrent") {
        let quota = Quota::concurrent(count)
            .map_err(|value| error(count_token.span(), Kind::Value(value)))?;
        return expect_end(&mut lexer, EXPECTED_END)
            .map(|()| quota)
            .map_err(|(span, kind)| error(span, kind));
    }
    if separator.kind != TokenKind::Slash && !lexer.is_word(separator, "per") {
        return Err(error(
            separator.span(),
            unexpected(&lexer, separator, EXPECTED_AFTER_COUNT),
        ));
    }

    // Period: `[<n>] <unit>`.
    let Some(mut unit_token) = lexer.next_token() else {
        return Err(error(lexer.missing(), Kind::MissingUnit));
    };
    let mut multiplier = 1;
    let mut multiplier_span = None;
    let period_start = unit_token.start;
    match unit_token.kind {
        TokenKind::Number => {
            let n_token = unit_token;
            multiplier = number(&lexer, n_token).map_err(|kind| error(n_token.span(), kind))?;
            multiplier_span = Some(n_token.span());
            unit_token = match lexer.next_token() {
                Some(token) if token.kind == TokenKind::Word => token,
                Some(token) => {
                    return Err(error(
                        token.span(),
                        unexpected(&lexer, token, EXPECTED_UNIT),
                    ))
                }
                None => return Err(error(lexer.missing(), Kind::MissingUnit)),
            };
        }
        TokenKind::Word => {}
        TokenKind::Slash | TokenKind::Other => {
            return Err(error(
                unit_token.span(),
                unexpected(&lexer, unit_token, EXPECTED_AFTER_SEPARATOR),
            ))
        }
    }
    let Some(unit) = Unit::from_word(lexer.text(unit_token)) else {
        return Err(error(
            unit_token.span(),
            Kind::UnknownUnit {
                unit: lexer.text(unit_token).to_owned(),
            },
        ));
    };
    let period_span = period_start..unit_token.end;
    let period_millis = u128::from(multiplier) * u128::from(unit.millis());
    let Ok(period_millis) = u64::try_from(period_millis) else {
        // Only a multiplier can push a period past `u64` milliseconds.
        return Err(error(
            multiplier_span.unwrap_or(period_span),
            Kind::NumberTooLarge,
        ));
    };
    let quota = Quota::new(count, Duration::from_millis(period_millis)).map_err(|value| {
        let span = match value {
            QuotaError::CountZero | QuotaError::CountTooLarge { .. } => count_token.span(),
            QuotaError::PeriodTooShort { .. }
            | QuotaError::PeriodTooLong { .. }
            | QuotaError::PeriodNotWholeMilliseconds { .. } => period_span.clone(),
            _ => count_token.start..period_span.end,
        };
        error(span, Kind::Value(value))
    })?;

    // Optional `burst <n>`.
    let Some(burst_keyword) = lexer.next_token() else {
        return Ok(quota);
    };
    if !lexer.is_word(burst_keyword, "burst") {
        return Err(error(
            burst_keyword.span(),
            unexpected(&lexer, burst_keyword, EXPECTED_AFTER_RATE),
        ));
    }
    let Some(burst_token) = lexer.next_token() else {
        return Err(error(
            lexer.missing(),
            Kind::ExpectedNumber {
                found: String::new(),
            },
        ));
    };
    let burst = number(&lexer, burst_token).map_err(|kind| error(burst_token.span(), kind))?;
    let quota = quota
        .with_burst(burst)
        .map_err(|value| error(burst_token.span(), Kind::Value(value)))?;
    expect_end(&mut lexer, EXPECTED_END)
        .map(|()| quota)
        .map_err(|(span, kind)| error(span, kind))
}

/// Reads a number token's value.
fn number(lexer: &Lexer<'_>, token: Token) -> Result<u64, Kind> {
    if token.kind != TokenKind::Number {
        return Err(Kind::ExpectedNumber {
            found: lexer.text(token).to_owned(),
        });
    }
    number_value(lexer.text(token)).ok_or(Kind::NumberTooLarge)
}

fn unexpected(lexer: &Lexer<'_>, token: Token, expected: &'static str) -> Kind {
    Kind::UnexpectedToken {
        found: lexer.text(token).to_owned(),
        expected,
    }
}

fn expect_end(lexer: &mut Lexer<'_>, expected: &'static str) -> Result<(), (Range<usize>, Kind)> {
    match lexer.next_token() {
        None => Ok(()),
        Some(token) => Err((token.span(), unexpected(lexer, token, expected))),
    }
}
