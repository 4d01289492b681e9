/// A wall-clock date and time (proleptic Gregorian calendar, no time zone), and its
/// conversion to and from seconds since 1970-01-01 00:00:00, for the RTC.
public struct CivilTime: Equatable, Sendable {
  public var year: Int
  public var month: Int
  public var day: Int
  public var hour: Int
  public var minute: Int
  public var second: Int

  public init(year: Int, month: Int, day: Int, hour: Int = 0, minute: Int = 0, second: Int = 0) {
    self.year = year
    self.month = month
    self.day = day
    self.hour = hour
    self.minute = minute
    self.second = second
  }

  /// The broken-down time of `secondsSinceEpoch` seconds after 1970-01-01 00:00:00.
  public init(secondsSinceEpoch: Int64) {
    let days = Int(secondsSinceEpoch.floorDivided(by: 86_400))
    let secondOfDay = Int(secondsSinceEpoch - Int64(days) * 86_400)
    // Days to a date, counting eras of 400 years (146097 days) from 0000-03-01 so that the
    // leap day ends each year.
    let z = days + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let dayOfEra = z - era * 146_097
    let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
    let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
    let shiftedMonth = (5 * dayOfYear + 2) / 153  // 0 = March
    day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
    month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
    year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    hour = secondOfDay / 3600
    minute = secondOfDay / 60 % 60
    second = secondOfDay % 60
  }

  /// A date written YYYY-MM-DDTHH:MM:SS (or with a space for the T, or the date alone), years
  /// 1970-9999, every field in its range; nil otherwise.
  public init?(parsing text: String) {
    let parts = text.split(whereSeparator: { $0 == "T" || $0 == " " })
    guard parts.count == 1 || parts.count == 2 else { return nil }
    let date = parts[0].split(separator: "-", omittingEmptySubsequences: false).map { Int($0) }
    let time = parts.count == 2 ? parts[1].split(separator: ":", omittingEmptySubsequences: false).map { Int($0) } : [0, 0, 0]
    guard date.count == 3, time.count == 3, let year = date[0], let month = date[1], let day = date[2],
      let hour = time[0], let minute = time[1], let second = time[2],
      (1970...9999).contains(year), (1...12).contains(month), (0...23).contains(hour), (0...59).contains(minute),
      (0...59).contains(second)
    else { return nil }
    let monthDays = [31, year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31]
    guard (1...monthDays[month - 1]).contains(day) else { return nil }
    self.init(year: year, month: month, day: day, hour: hour, minute: minute, second: second)
  }

  /// Days since 1970-01-01 of the date (the inverse of the above).
  public var daysSinceEpoch: Int {
    let y = month <= 2 ? year - 1 : year
    let era = (y >= 0 ? y : y - 399) / 400
    let yearOfEra = y - era * 400
    let shiftedMonth = (month + 9) % 12
    let dayOfYear = (153 * shiftedMonth + 2) / 5 + day - 1
    let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
    return era * 146_097 + dayOfEra - 719_468
  }

  public var secondsSinceEpoch: Int64 {
    Int64(daysSinceEpoch) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
  }

  /// 1 for Sunday to 7 for Saturday, as the MC146818 counts (1970-01-01 was a Thursday).
  public var dayOfWeek: Int {
    (daysSinceEpoch % 7 + 7 + 4) % 7 + 1
  }
}

extension Int64 {
  fileprivate func floorDivided(by divisor: Int64) -> Int64 {
    let quotient = self / divisor
    return self % divisor < 0 ? quotient - 1 : quotient
  }
}
