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
const EXPECTED_AFTER_RATE: &str = "\"burst\", \"queue\" or the end of the quota";
const EXPECTED_AFTER_BURST: &str = "\"queue\" or the end of the quota";
const EXPECTED_AFTER_QUEUE: &str = "\"wait\" or the end of the quota";
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

    /// Reads a number token's value.
    fn number(&self, token: Token) -> Result<u64, Located> {
        if token.kind != TokenKind::Number {
            let found = self.text(token).to_owned();
            return Err((token.span(), Kind::ExpectedNumber { found }));
        }
        number_value(self.text(token)).ok_or((token.span(), Kind::NumberTooLarge))
    }

    fn unexpected(&self, token: Token, expected: &'static str) -> Located {
        let found = self.text(token).to_owned();
        (token.span(), Kind::UnexpectedToken { found, expected })
    }

    fn unexpected_end(&self, expected: &'static str) -> Located {
        let found = String::new();
        (self.missing(), Kind::UnexpectedToken { found, expected })
    }

    fn expect_end(&mut self) -> Result<(), Located> {
        match self.next_token() {
            None => Ok(()),
            Some(token) => Err(self.unexpected(token, EXPECTED_END)),
        }
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

/// A parse error before it is tied to its input: the span and the kind.
type Located = (Range<usize>, Kind);

/// Parses the segment `range` of `input` (index `segment`) as one quota.
fn parse_segment(
    input: &str,
    segment: usize,
    range: Range<usize>,
) -> Result<Quota, QuotaParseError> {
    let mut lexer = Lexer::new(input, range.clone());
    quota(&mut lexer, range)
        .map_err(|(span, kind)| QuotaParseError::new(input, segment, span, kind))
}

/// `<count> concurrent` or
/// `<count> (/|per) <period> [burst <n>] [queue <n> [wait <n> <unit>]]`.
fn quota(lexer: &mut Lexer<'_>, range: Range<usize>) -> Result<Quota, Located> {
    let Some(count_token) = lexer.next_token() else {
        return Err((range, Kind::Empty));
    };
    let count = lexer.number(count_token)?;

    let Some(separator) = lexer.next_token() else {
        return Err(lexer.unexpected_end(EXPECTED_AFTER_COUNT));
    };
    if lexer.is_word(separator, "concurrent") {
        let quota =
            Quota::concurrent(count).map_err(|value| (count_token.span(), Kind::Value(value)))?;
        lexer.expect_end()?;
        return Ok(quota);
    }
    if separator.kind != TokenKind::Slash && !lexer.is_word(separator, "per") {
        return Err(lexer.unexpected(separator, EXPECTED_AFTER_COUNT));
    }

    let (length, period_span) = period(lexer)?;
    let quota = Quota::new(count, length).map_err(|value| {
        let span = match value {
            QuotaError::CountZero | QuotaError::CountTooLarge { .. } => count_token.span(),
            QuotaError::PeriodTooShort { .. }
            | QuotaError::PeriodTooLong { .. }
            | QuotaError::PeriodNotWholeMilliseconds { .. } => period_span.clone(),
            _ => count_token.start..period_span.end,
        };
        (span, Kind::Value(value))
    })?;

    // Optional `burst <n>`, `queue <n>`, `wait <n> <unit>`, in this order.
    let mut quota = quota;
    let mut expected = EXPECTED_AFTER_RATE;
    let mut keyword = lexer.next_token();
    if keyword.is_some_and(|t| lexer.is_word(t, "burst")) {
        let (burst, span) = keyword_number(lexer)?;
        quota = quota
            .with_burst(burst)
            .map_err(|value| (span, Kind::Value(value)))?;
        expected = EXPECTED_AFTER_BURST;
        keyword = lexer.next_token();
    }
    if keyword.is_some_and(|t| lexer.is_word(t, "queue")) {
        let (queue, span) = keyword_number(lexer)?;
        quota = quota
            .with_queue(queue)
            .map_err(|value| (span, Kind::Value(value)))?;
        expected = EXPECTED_AFTER_QUEUE;
        keyword = lexer.next_token();
        if keyword.is_some_and(|t| lexer.is_word(t, "wait")) {
            let (wait, span) = period(lexer)?;
            quota = quota
                .with_max_wait(wait)
                .map_err(|value| (span, Kind::Value(value)))?;
            expected = EXPECTED_END;
            keyword = lexer.next_token();
        }
    }
    match keyword {
        None => Ok(quota),
        Some(token) => Err(lexer.unexpected(token, expected)),
    }
}

/// The number after a keyword such as `burst`, and its span.
fn keyword_number(lexer: &mut Lexer<'_>) -> Result<(u64, Range<usize>), Located> {
    let Some(token) = lexer.next_token() else {
        let found = String::new();
        return Err((lexer.missing(), Kind::ExpectedNumber { found }));
    };
    Ok((lexer.number(token)?, token.span()))
}

/// `[<n>] <unit>`: the period and its span.
fn period(lexer: &mut Lexer<'_>) -> Result<(Duration, Range<usize>), Located> {
    let Some(first) = lexer.next_token() else {
        return Err((lexer.missing(), Kind::MissingUnit));
    };
    let (multiplier, unit_token) = match first.kind {
        TokenKind::Number => {
            let multiplier = lexer.number(first)?;
            match lexer.next_token() {
                Some(token) if token.kind == TokenKind::Word => (Some(multiplier), token),
                Some(token) => return Err(lexer.unexpected(token, EXPECTED_UNIT)),
                None => return Err((lexer.missing(), Kind::MissingUnit)),
            }
        }
        TokenKind::Word => (None, first),
        TokenKind::Slash | TokenKind::Other => {
            return Err(lexer.unexpected(first, EXPECTED_AFTER_SEPARATOR))
        }
    };
    let word = lexer.text(unit_token);
    let Some(unit) = Unit::from_word(word) else {
        let unit = word.to_owned();
        return Err((unit_token.span(), Kind::UnknownUnit { unit }));
    };
    let millis = u128::from(multiplier.unwrap_or(1)) * u128::from(unit.millis());
    // Only a multiplier can push a period past `u64` milliseconds.
    let millis = u64::try_from(millis).map_err(|_| (first.span(), Kind::NumberTooLarge))?;
    Ok((Duration::from_millis(millis), first.start..unit_token.end))
}
